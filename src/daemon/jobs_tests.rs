use super::*;

fn known(outcome: Outcome, expires: Option<chrono::NaiveDateTime>) -> Known {
    Known {
        fingerprint: 7,
        outcome: Some(outcome),
        sender: 3,
        signature: 5,
        expires,
    }
}

fn uid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

#[test]
fn due_jobs_come_out_the_owners_first_then_the_oldest() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut j = Jobs::new(t0);
    j.put_pending("a", ms(0), ms(0), ms(10), Some(Rank::Other));
    j.put_pending(&uid(1), ms(1), ms(1), ms(10), Some(Rank::Other));
    j.put_pending("late", ms(2), ms(2), ms(500), Some(Rank::Owner));
    j.put_pending("mine", ms(3), ms(3), ms(10), Some(Rank::Owner));
    assert_eq!(j.pending_len(), 4);
    assert_eq!(j.next_due(), Some(ms(10)));
    j.promote(ms(20));
    assert_eq!(j.ready_len(), 3, "the one settling until 500 ms is not due");
    assert!(j.has_ready(Rank::Owner));
    let owners = j.take_ready(Rank::Owner, 10);
    assert_eq!(owners, vec![("mine".to_string(), ms(3))]);
    let others: Vec<String> = j
        .take_ready(Rank::Other, 1)
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(others, vec!["a".to_string()], "the oldest first, one asked");
    assert!(j.is_pending(&uid(1)) && !j.is_pending("a"));
    assert_eq!(j.pending_len(), 2);
    // An event moves a due job's window later: it is no longer due.
    j.set_due(&uid(1), ms(600));
    assert_eq!(j.ready_len(), 0);
    assert_eq!(j.next_due(), Some(ms(500)));
}

#[test]
fn the_newest_unranked_are_ranked_first() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut j = Jobs::new(t0);
    for i in 0..10u64 {
        // Seen at once (a rescan), arrived one after the other.
        j.put_pending(&uid(i as usize), ms(0), ms(i), ms(0), None);
    }
    j.promote(ms(0));
    assert_eq!(j.unranked_len(), 10);
    let newest = j.newest_unranked(3);
    let names: Vec<&str> = newest.iter().map(|(_, u)| u.as_str()).collect();
    assert_eq!(names, [uid(9), uid(8), uid(7)]);
    j.set_rank(newest[1].0, Rank::Owner);
    assert_eq!(j.unranked_len(), 9);
    assert_eq!(j.take_ready(Rank::Owner, 5)[0].0, uid(8));
    j.unrank_all();
    assert_eq!(j.unranked_len(), 9);
}

#[test]
fn reviewed_jobs_are_counted_and_expire_in_order() {
    let t0 = Instant::now();
    let mut j = Jobs::new(t0);
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0)
            .unwrap()
            .naive_utc()
    };
    j.know("w1", known(Outcome::Wait, Some(at(20))));
    j.know("w2", known(Outcome::Wait, Some(at(10))));
    j.know("f", known(Outcome::Invalid, None));
    assert_eq!((j.counts(), j.known_len()), ((2, 1), 3));
    assert_eq!(j.known("w1"), Some(known(Outcome::Wait, Some(at(20)))));
    assert_eq!(j.next_expiry(), Some(at(10)));
    assert_eq!(j.take_expired(at(15)), vec!["w2".to_string()]);
    assert_eq!(j.next_expiry(), Some(at(20)));
    // Said again: counted once.
    j.know("w1", known(Outcome::Invalid, None));
    assert_eq!(j.counts(), (1, 2));
    assert_eq!(j.next_expiry(), None);
    j.put_pending("f", t0, t0, t0, None);
    assert_eq!(
        j.known_where(|_| true),
        vec!["w1".to_string(), "w2".to_string()]
    );
    j.retain_known(|u| u != "w2");
    assert_eq!((j.known_len(), j.counts()), (2, (0, 2)));
    j.forget("f");
    assert!(j.is_pending("f"), "still due to be read");
    assert_eq!(j.take_ready(Rank::Other, 1).len(), 0);
    j.promote(t0);
    j.set_rank(j.newest_unranked(1)[0].0, Rank::Other);
    assert_eq!(j.take_ready(Rank::Other, 1)[0].0, "f");
    assert_eq!(j.pending_len(), 0);
}

#[test]
fn slots_are_reused_and_small() {
    let t0 = Instant::now();
    let mut j = Jobs::new(t0);
    let exp = chrono::DateTime::from_timestamp(1_800_000_000, 0).map(|d| d.naive_utc());
    for i in 0..100_000 {
        j.put_pending(&uid(i), t0, t0, t0, None);
    }
    let arriving = j.footprint();
    j.promote(t0);
    for (id, _) in j.newest_unranked(200_000) {
        j.set_rank(id, Rank::Other);
    }
    let mut n = 0;
    for (u, _) in j.take_ready(Rank::Other, 200_000) {
        j.know(&u, known(Outcome::Wait, exp));
        n += 1;
    }
    assert_eq!((n, j.pending_len(), j.known_len()), (100_000, 0, 100_000));
    let waiting = j.footprint();
    println!(
        "per-job state for 100,000 jobs: {} KB pending, {} KB reviewed and waiting",
        arriving / 1024,
        waiting / 1024
    );
    // Uid, times, rank, review keys and a place in one ordered set: about 120 bytes a job.
    assert!(
        arriving.max(waiting) < 13 << 20,
        "{arriving} / {waiting} bytes"
    );
    for i in 0..100_000 {
        j.forget(&uid(i));
    }
    assert_eq!((j.pending_len(), j.known_len(), j.counts()), (0, 0, (0, 0)));
    for i in 0..100_000 {
        j.put_pending(&uid(i + 7), t0, t0, t0, None);
    }
    assert_eq!(j.slots.len(), 100_000, "freed slots are used again");
}

#[test]
fn a_flood_gone_leaves_no_room_behind() {
    let t0 = Instant::now();
    let mut j = Jobs::new(t0);
    // The first two seen last: they are the ones left, in the first slots.
    let later = t0 + Duration::from_millis(1);
    for i in 0..50_000 {
        let first = if i < 2 { later } else { t0 };
        j.put_pending(&uid(i), first, t0, t0, None);
    }
    let full = j.footprint();
    j.promote(t0);
    for (id, _) in j.newest_unranked(100_000) {
        j.set_rank(id, Rank::Other);
    }
    // All decided but two, and one waits (known): the three are kept through the shrink.
    let taken = j.take_ready(Rank::Other, 49_998);
    assert_eq!(taken.len(), 49_998);
    let waits = taken[0].0.clone();
    assert_eq!(waits, uid(2));
    j.know(&waits, known(Outcome::Wait, None));
    j.shrink();
    assert!(j.footprint() < full / 4, "{} of {full}", j.footprint());
    assert_eq!(
        j.known(&waits).map(|k| k.outcome),
        Some(Some(Outcome::Wait))
    );
    assert_eq!((j.pending_len(), j.known_len()), (2, 1));
    let rest: Vec<String> = j
        .take_ready(Rank::Other, 5)
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(rest, vec![uid(0), uid(1)]);
    j.forget(&waits);
    j.shrink();
    assert_eq!((j.slots.len(), j.free.len()), (0, 0));
    // And it fills again as before.
    j.put_pending(&uid(1), t0, t0, t0, None);
    assert!(j.is_pending(&uid(1)));
}

#[test]
fn the_epoch_moves_before_times_run_out() {
    let t0 = Instant::now();
    let day = Duration::from_secs(86_400);
    let mut j = Jobs::new(t0);
    j.put_pending(
        "old",
        t0,
        t0,
        t0 + Duration::from_millis(5),
        Some(Rank::Other),
    );
    j.put_pending("waits", t0, t0, t0 + day, Some(Rank::Other));
    // Days later (a daemon that has run for weeks): times far past 32 bits of milliseconds.
    let later = t0 + day * 40;
    j.put_pending(
        "new",
        later,
        later,
        later + Duration::from_millis(5),
        Some(Rank::Owner),
    );
    assert!(j.next_due().is_some_and(|t| t < later));
    j.promote(later + Duration::from_millis(10));
    assert_eq!(j.ready_len(), 3);
    let owners = j.take_ready(Rank::Owner, 5);
    assert_eq!(owners, vec![("new".to_string(), later)]);
    let others: Vec<String> = j
        .take_ready(Rank::Other, 5)
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(others.len(), 2, "{others:?}");
    j.put_pending("next", later, later, later + Duration::from_secs(3), None);
    assert_eq!(j.next_due(), Some(later + Duration::from_secs(3)));
}

#[test]
fn expiries_said_again_or_forgotten_neither_fire_nor_pile_up() {
    let mut j = Jobs::new(Instant::now());
    let at = |s: i64| {
        chrono::DateTime::from_timestamp(1_800_000_000 + s, 0)
            .unwrap()
            .naive_utc()
    };
    for round in 0..5000 {
        j.know("a", known(Outcome::Wait, Some(at(100 + round))));
    }
    assert!(j.expiry.len() < 1100, "{} entries kept", j.expiry.len());
    j.know("b", known(Outcome::Wait, Some(at(50))));
    assert_eq!(j.next_expiry(), Some(at(50)));
    j.forget("b");
    assert_eq!(j.next_expiry(), Some(at(5099)), "only what stands is next");
    assert_eq!(j.take_expired(at(10_000)), vec!["a".to_string()]);
    assert_eq!(j.next_expiry(), None);
    j.shrink();
    assert!(j.expiry.is_empty());
}
