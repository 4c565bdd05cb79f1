//! The folders the tree watch watches, each stored once as its name under its parent's watch,
//! not as a full path (twice, by descriptor and by path): a flood's 16,384 watched folders
//! then cost about 135 bytes each instead of 360 (heaptrack), and a job folder named by a
//! canonical UUID takes no allocation of its own (its name is packed into 16 bytes). A
//! folder's path is rebuilt from its parents when one of its events is reported. Moving a
//! folder within the tree re-links it, so what is below follows.
//!
//! Generic over the descriptor, so its unit tests need no inotify.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::hash::Hash;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::queue::uid::{format_uuid, parse_uuid, uuid_str};

/// Names up to this long are stored inline (`code`, `outputs`, ...).
const SHORT: usize = 22;
/// Parents followed at most when a path is rebuilt (far deeper than any job's folders; a
/// bound so that nothing written by others can make it loop).
const MAX_DEPTH: usize = 256;

/// A folder's name under its parent, or for a top folder (a root, or a folder whose parent is
/// not watched) its full path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Name {
    Uuid([u8; 16]),
    Short(u8, [u8; SHORT]),
    Long(Box<[u8]>),
}

impl Name {
    fn of(s: &OsStr) -> Name {
        let b = s.as_bytes();
        if let Some(u) = s.to_str().and_then(parse_uuid) {
            return Name::Uuid(u);
        }
        match u8::try_from(b.len()) {
            Ok(len) if b.len() <= SHORT => {
                let mut buf = [0; SHORT];
                buf[..b.len()].copy_from_slice(b);
                Name::Short(len, buf)
            }
            _ => Name::Long(b.into()),
        }
    }

    /// A top folder's full path (`None` for a packed UUID: never a full path).
    fn as_path(&self) -> Option<&Path> {
        let b = match self {
            Name::Uuid(_) => return None,
            Name::Short(len, buf) => buf.get(..usize::from(*len))?,
            Name::Long(b) => b,
        };
        Some(Path::new(OsStr::from_bytes(b)))
    }

    /// Appends this name to `out` (a top's full path replaces it).
    fn push_to(&self, out: &mut PathBuf) {
        match self {
            Name::Uuid(u) => out.push(uuid_str(&format_uuid(u))),
            Name::Short(len, buf) => {
                out.push(OsStr::from_bytes(
                    buf.get(..usize::from(*len)).unwrap_or(&[]),
                ));
            }
            Name::Long(b) => out.push(OsStr::from_bytes(b)),
        }
    }
}

#[derive(Debug)]
struct Node<W> {
    /// `None`: a top folder, whose `name` is its full path.
    parent: Option<W>,
    name: Name,
}

/// Watched folders: descriptor -> (parent, name), and (parent, name) -> descriptor.
#[derive(Debug)]
pub(super) struct Folders<W> {
    nodes: HashMap<W, Node<W>>,
    /// Ordered by parent, so a folder's subfolders are one range.
    children: BTreeMap<(Option<W>, Name), W>,
}

impl<W> Default for Folders<W> {
    fn default() -> Self {
        Folders {
            nodes: HashMap::new(),
            children: BTreeMap::new(),
        }
    }
}

/// The smallest name, to start the range of a parent's subfolders.
const FIRST: Name = Name::Uuid([0; 16]);

impl<W: Copy + Eq + Hash + Ord> Folders<W> {
    /// Folders watched (by distinct path).
    pub(super) fn len(&self) -> usize {
        self.children.len()
    }

    /// The descriptor watching `path`, if one does: found from the top folder it is under
    /// (there are few: the roots, and the rare folder whose parent was not watched), one
    /// name at a time.
    pub(super) fn get(&self, path: &Path) -> Option<W> {
        self.children
            .range((None, FIRST)..)
            .take_while(|((p, _), _)| p.is_none())
            .find_map(|((_, top), wd)| {
                let mut at = *wd;
                for c in path.strip_prefix(top.as_path()?).ok()?.components() {
                    let std::path::Component::Normal(name) = c else {
                        return None;
                    };
                    at = *self.children.get(&(Some(at), Name::of(name)))?;
                }
                Some(at)
            })
    }

    pub(super) fn contains(&self, path: &Path) -> bool {
        self.get(path).is_some()
    }

    /// The path of the folder `wd` watches.
    pub(super) fn path(&self, wd: W) -> Option<PathBuf> {
        let mut chain = Vec::new();
        let mut at = self.nodes.get(&wd)?;
        while let Some(p) = at.parent {
            if chain.len() >= MAX_DEPTH {
                return None;
            }
            chain.push(&at.name);
            at = self.nodes.get(&p)?;
        }
        let mut out = PathBuf::new();
        at.name.push_to(&mut out);
        for name in chain.into_iter().rev() {
            name.push_to(&mut out);
        }
        Some(out)
    }

    /// Where `path` is kept: under the watch of its parent folder, or as a top folder.
    fn key_of(&self, path: &Path) -> (Option<W>, Name) {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name())
            && let Some(p) = self.get(dir)
        {
            return (Some(p), Name::of(name));
        }
        (None, Name::of(path.as_os_str()))
    }

    /// `wd` watches `path` now. The same folder reached by a new path (moved within the tree)
    /// keeps its descriptor, and its subfolders follow it.
    pub(super) fn insert(&mut self, wd: W, path: &Path) {
        let (mut parent, mut name) = self.key_of(path);
        if parent.is_some_and(|p| self.is_within(p, wd)) {
            // Would make it its own ancestor (only a stale entry can say so): kept whole, and
            // its subfolders keep the paths they had.
            parent = None;
            name = Name::of(path.as_os_str());
            let below: Vec<W> = self.below(wd).collect();
            for c in below {
                if let Some(p) = self.path(c) {
                    self.relink(c, None, Name::of(p.as_os_str()));
                }
            }
        }
        self.relink(wd, parent, name);
    }

    /// Puts `wd` at (`parent`, `name`), wherever it was.
    fn relink(&mut self, wd: W, parent: Option<W>, name: Name) {
        if let Some(old) = self.nodes.remove(&wd) {
            let key = (old.parent, old.name);
            if self.children.get(&key) == Some(&wd) {
                self.children.remove(&key);
            }
        }
        self.children.insert((parent, name.clone()), wd);
        self.nodes.insert(wd, Node { parent, name });
    }

    /// Whether `at` is `wd` or below it.
    fn is_within(&self, mut at: W, wd: W) -> bool {
        for _ in 0..MAX_DEPTH {
            if at == wd {
                return true;
            }
            match self.nodes.get(&at).and_then(|n| n.parent) {
                Some(p) => at = p,
                None => return false,
            }
        }
        true
    }

    /// The folders right below `wd`.
    fn below(&self, wd: W) -> impl Iterator<Item = W> + '_ {
        self.children
            .range((Some(wd), FIRST)..)
            .take_while(move |((p, _), _)| *p == Some(wd))
            .map(|(_, c)| *c)
    }

    /// Forgets `path` and every folder under it; returns their descriptors (to remove their
    /// watches).
    pub(super) fn remove_tree(&mut self, path: &Path) -> Vec<W> {
        let found = self.get(path);
        let mut doomed: Vec<W> = found.into_iter().collect();
        // Top folders under `path` (whose parents were not watched) go with it.
        doomed.extend(
            self.children
                .range((None, FIRST)..)
                .take_while(|((p, _), _)| p.is_none())
                .filter(|((_, n), wd)| {
                    Some(**wd) != found && n.as_path().is_some_and(|p| p.starts_with(path))
                })
                .map(|(_, wd)| *wd),
        );
        // A set beside the list: removing the whole queue's tree (16,384 folders) must not
        // compare each folder with every other.
        let mut seen: std::collections::HashSet<W> = doomed.iter().copied().collect();
        let mut i = 0;
        while let Some(&wd) = doomed.get(i) {
            i += 1;
            let below: Vec<W> = self.below(wd).collect();
            for c in below {
                if seen.insert(c) {
                    doomed.push(c);
                }
            }
        }
        for wd in &doomed {
            self.unlink(*wd);
            self.nodes.remove(wd);
        }
        // The room a flood's folders took is given back as they go (the table keeps its
        // high-water mark otherwise).
        if self.nodes.capacity() > 1024 && self.nodes.len() < self.nodes.capacity() / 4 {
            self.nodes.shrink_to_fit();
        }
        doomed
    }

    /// The watch `wd` is gone (its folder was deleted). Folders still known below it keep
    /// their paths until they are forgotten in turn (the kernel drops a deleted folder's
    /// subfolders first).
    pub(super) fn forget(&mut self, wd: W) {
        self.unlink(wd);
        // Up the parents that were forgotten before it and waited only for their subfolders.
        let mut at = Some(wd);
        while let Some(w) = at.take() {
            let linked = self
                .nodes
                .get(&w)
                .is_some_and(|n| self.children.get(&(n.parent, n.name.clone())) == Some(&w));
            if w != wd && linked || self.below(w).next().is_some() {
                break;
            }
            at = self.nodes.remove(&w).and_then(|n| n.parent);
        }
    }

    /// `wd` no longer watches its path (its node stays).
    fn unlink(&mut self, wd: W) {
        let Some(n) = self.nodes.get(&wd) else {
            return;
        };
        let key = (n.parent, n.name.clone());
        if self.children.get(&key) == Some(&wd) {
            self.children.remove(&key);
        }
    }

    /// Every watched path (for tests).
    #[cfg(test)]
    pub(super) fn paths(&self) -> Vec<PathBuf> {
        self.children
            .values()
            .filter_map(|wd| self.path(*wd))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U: &str = "18ed47b7-8b0d-4e1b-8fa3-e5f152b2a9fa";

    fn tree() -> Folders<u32> {
        let mut f = Folders::default();
        f.insert(1, Path::new("/q/pending"));
        f.insert(2, &Path::new("/q/pending").join(U));
        f.insert(3, &Path::new("/q/pending").join(U).join("code"));
        f.insert(
            4,
            &Path::new("/q/pending")
                .join(U)
                .join("code/a-rather-long-folder-name-here"),
        );
        f.insert(5, Path::new("/q/pending/Not-A-Uuid"));
        f
    }

    #[test]
    fn paths_are_rebuilt_from_names_under_their_parents() {
        let f = tree();
        assert_eq!(f.len(), 5);
        for (wd, p) in [
            (1, "/q/pending".to_string()),
            (2, format!("/q/pending/{U}")),
            (3, format!("/q/pending/{U}/code")),
            (
                4,
                format!("/q/pending/{U}/code/a-rather-long-folder-name-here"),
            ),
            (5, "/q/pending/Not-A-Uuid".to_string()),
        ] {
            assert_eq!(f.path(wd), Some(PathBuf::from(&p)));
            assert_eq!(f.get(Path::new(&p)), Some(wd), "{p}");
        }
        assert!(!f.contains(Path::new("/q/pending/other")));
        assert!(!f.contains(Path::new("/q")));
        // Only the root's path is stored whole; the job folder's name takes no allocation.
        assert!(matches!(f.nodes[&2].name, Name::Uuid(_)));
        assert!(matches!(f.nodes[&3].name, Name::Short(..)));
    }

    #[test]
    fn removing_a_folder_removes_what_is_below_it_only() {
        let mut f = tree();
        let mut gone = f.remove_tree(&Path::new("/q/pending").join(U));
        gone.sort_unstable();
        assert_eq!(gone, vec![2, 3, 4]);
        assert_eq!(f.len(), 2);
        assert_eq!(f.nodes.len(), 2);
        assert_eq!(
            f.paths(),
            vec![
                PathBuf::from("/q/pending"),
                PathBuf::from("/q/pending/Not-A-Uuid")
            ]
        );
        assert!(f.remove_tree(Path::new("/q/pending/nothing")).is_empty());
    }

    #[test]
    fn a_folder_moved_within_the_tree_keeps_its_descriptor_and_subfolders() {
        let mut f = tree();
        f.insert(2, Path::new("/q/pending/Not-A-Uuid/moved"));
        assert_eq!(
            f.path(2),
            Some(PathBuf::from("/q/pending/Not-A-Uuid/moved"))
        );
        assert_eq!(
            f.path(3),
            Some(PathBuf::from("/q/pending/Not-A-Uuid/moved/code"))
        );
        assert!(!f.contains(&Path::new("/q/pending").join(U)));
        let mut gone = f.remove_tree(Path::new("/q/pending/Not-A-Uuid"));
        gone.sort_unstable();
        assert_eq!(gone, vec![2, 3, 4, 5]);
    }

    #[test]
    fn folders_whose_parent_is_not_watched_are_kept_whole_and_removed_with_it() {
        let mut f = tree();
        f.insert(9, Path::new("/q/pending/unwatched/deep"));
        assert_eq!(f.path(9), Some(PathBuf::from("/q/pending/unwatched/deep")));
        assert!(f.contains(Path::new("/q/pending/unwatched/deep")));
        let mut gone = f.remove_tree(Path::new("/q/pending"));
        gone.sort_unstable();
        assert_eq!(gone, vec![1, 2, 3, 4, 5, 9]);
        assert_eq!(f.len(), 0);
        assert!(f.nodes.is_empty());
    }

    #[test]
    fn a_forgotten_folder_leaves_its_subfolders_their_paths() {
        let mut f = tree();
        f.forget(3);
        assert!(!f.contains(&Path::new("/q/pending").join(U).join("code")));
        assert_eq!(
            f.path(4),
            Some(
                Path::new("/q/pending")
                    .join(U)
                    .join("code/a-rather-long-folder-name-here")
            )
        );
        f.forget(4);
        assert!(!f.nodes.contains_key(&3), "kept only for its subfolder");
        assert_eq!(f.path(2), Some(Path::new("/q/pending").join(U)));
        f.forget(2);
        assert_eq!(f.len(), 2);
        assert_eq!(f.nodes.len(), 2);
        f.forget(42);
    }

    #[test]
    fn a_folder_cannot_become_its_own_ancestor() {
        let mut f = tree();
        // A stale descriptor reused for a folder below it: kept as a top, no loop.
        f.insert(2, &Path::new("/q/pending").join(U).join("code/x"));
        assert_eq!(
            f.path(2),
            Some(Path::new("/q/pending").join(U).join("code/x"))
        );
        assert_eq!(
            f.path(3),
            Some(Path::new("/q/pending").join(U).join("code"))
        );
    }
}
