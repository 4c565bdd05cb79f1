// The page's state shared by the tabs.

export const PAGE = 50;

export const state = {
  tab: 'pending',
  owner: null,
  pendingWant: PAGE, // how many pending jobs to show ("Load more" adds a page)
  filters: { sender: '', name: '', max_age_hours: '' },
  seq: {}, // per-view request sequence numbers: late answers to old requests are dropped
  decisionsKey: null,
};
