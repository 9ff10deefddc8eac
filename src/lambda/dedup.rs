//! One message per cause, not per task. The first stop of a failure signature (the service plus
//! `scan::GroupKey`: who must act, the rule, the permissions and the resource pattern with task ids
//! masked) is posted and opens a window; later stops with the same signature inside the window are
//! only counted. When the window has ended, the next invocation of the function (a task event, or
//! the scheduled tick the Terraform module sends every few minutes) posts one summary with the
//! count, before anything else.
//!
//! The state is in memory: the function runs with reserved concurrency 1, so one sandbox sees
//! every event. A cold start (a new sandbox after idling or an update) begins empty: the first stop
//! after it is posted again, and the counts of windows still open in the old sandbox are lost.
//! That is the price of a role with no write permission beyond `sns:Publish`. Nothing here does
//! I/O and time is passed in, so the tests control the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::scan::GroupKey;

/// Most task ids remembered per window (the count goes on beyond it).
pub const MAX_TASKS_KEPT: usize = 1_000;
/// Most summaries kept for a later try when posting them failed.
pub const MAX_PENDING: usize = 100;

/// What makes two stops the same cause for folding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Signature {
    /// The cluster's name (or ARN when it has no name).
    pub cluster: String,
    /// The task's group: `service:NAME` or `family:NAME`. Two services broken by one cause are
    /// two messages: each service's team sees its own.
    pub group: String,
    /// The cause.
    pub key: GroupKey,
}

/// What the first message of a window said, for its summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headline {
    /// The verdict's tag and summary (plain text; escaped when rendered).
    pub text: String,
    /// The cluster as shown in the header.
    pub cluster: String,
    /// The service or family as shown in the header.
    pub service: String,
}

/// One open window.
#[derive(Debug, Clone)]
struct Window {
    opened: SystemTime,
    headline: Headline,
    /// Tasks seen in the window (the first included), by `taskArn` + event `version`, so a
    /// duplicate delivery is not counted twice.
    seen: BTreeSet<String>,
    /// Folded task ids, oldest first (at most [`MAX_TASKS_KEPT`]).
    folded: Vec<String>,
    count: usize,
    first_folded: Option<SystemTime>,
    last_folded: Option<SystemTime>,
}

/// Stops folded into one summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// What the window's first message said.
    pub headline: Headline,
    /// How many more tasks stopped with the same cause.
    pub count: usize,
    /// Their task ids, oldest first (at most [`MAX_TASKS_KEPT`]).
    pub task_ids: Vec<String>,
    /// When the window opened (the first message).
    pub opened: SystemTime,
    /// The first and last folded stop.
    pub between: (SystemTime, SystemTime),
}

/// What to do with a stop worth a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// The first of its signature in the window: post it, then call [`Folder::open`].
    First,
    /// Counted into the open window; `n` stops folded so far.
    Folded(usize),
    /// The same task and event version were seen already (EventBridge delivers at least once).
    Duplicate,
}

/// The folding state of one sandbox.
#[derive(Debug, Clone, Default)]
pub struct Folder {
    window: Option<Duration>,
    open: BTreeMap<Signature, Window>,
    pending: Vec<Summary>,
}

impl Folder {
    /// A folder with this window; `None` admits every stop as the first.
    pub fn new(window: Option<Duration>) -> Folder {
        Folder {
            window,
            open: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// Closes every window that has ended by `now` and returns the summaries to post (those of
    /// windows that folded at least one stop, and any whose posting failed before).
    pub fn due(&mut self, now: SystemTime) -> Vec<Summary> {
        let Some(len) = self.window else {
            return std::mem::take(&mut self.pending);
        };
        let ended: Vec<Signature> = self
            .open
            .iter()
            .filter(|(_, w)| now.duration_since(w.opened).unwrap_or_default() >= len)
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = std::mem::take(&mut self.pending);
        for k in ended {
            if let Some(w) = self.open.remove(&k) {
                if w.count > 0 {
                    out.push(Summary {
                        headline: w.headline,
                        count: w.count,
                        task_ids: w.folded,
                        opened: w.opened,
                        between: (w.first_folded.unwrap_or(w.opened), w.last_folded.unwrap_or(w.opened)),
                    });
                }
            }
        }
        out
    }

    /// Gives back a summary whose posting failed, for the next invocation to try again.
    pub fn retry_later(&mut self, s: Summary) {
        if self.pending.len() >= MAX_PENDING {
            self.pending.remove(0);
        }
        self.pending.push(s);
    }

    /// Admits a stop: the first of its signature, folded, or a duplicate. `seen_key` is the task
    /// ARN and event version; `task_id` is what a summary lists.
    pub fn admit(&mut self, sig: &Signature, seen_key: &str, task_id: &str, now: SystemTime) -> Admit {
        if self.window.is_none() {
            return Admit::First;
        }
        let Some(w) = self.open.get_mut(sig) else {
            return Admit::First;
        };
        if !w.seen.insert(seen_key.to_string()) {
            return Admit::Duplicate;
        }
        w.count += 1;
        if w.folded.len() < MAX_TASKS_KEPT {
            w.folded.push(task_id.to_string());
        }
        w.first_folded.get_or_insert(now);
        w.last_folded = Some(now);
        Admit::Folded(w.count)
    }

    /// Opens the window of a signature after its first message was posted (not before: an
    /// invocation whose posting failed is retried by Lambda and must post then).
    pub fn open(&mut self, sig: Signature, seen_key: &str, headline: Headline, now: SystemTime) {
        if self.window.is_none() {
            return;
        }
        self.open.insert(
            sig,
            Window {
                opened: now,
                headline,
                seen: BTreeSet::from([seen_key.to_string()]),
                folded: Vec::new(),
                count: 0,
                first_folded: None,
                last_folded: None,
            },
        );
    }

    /// Windows open now.
    pub fn open_windows(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Category, Culprit};

    fn sig(group: &str, rule: &str) -> Signature {
        Signature {
            cluster: "prod".into(),
            group: group.into(),
            key: GroupKey {
                culprit: Culprit::ExecutionRole,
                category: Category::Iam,
                rule_id: Some(rule.into()),
                permissions: vec!["ssm:GetParameters".into()],
                resource: Some("arn:aws:ssm:us-east-1:123456789012:parameter/db".into()),
            },
        }
    }

    fn headline() -> Headline {
        Headline {
            text: "IAM: the task execution role: denied".into(),
            cluster: "prod".into(),
            service: "web".into(),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn a_burst_is_one_message_then_one_summary_after_the_window() {
        let mut f = Folder::new(Some(Duration::from_secs(900)));
        let s = sig("service:web", "secret-ssm-access-denied");
        assert_eq!(f.admit(&s, "t0#1", "t0", at(0)), Admit::First);
        f.open(s.clone(), "t0#1", headline(), at(0));
        for i in 1..20 {
            assert_eq!(
                f.admit(&s, &format!("t{i}#1"), &format!("t{i}"), at(i)),
                Admit::Folded(i as usize)
            );
        }
        assert!(f.due(at(899)).is_empty(), "the window is still open");
        let due = f.due(at(900));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].count, 19);
        assert_eq!(due[0].task_ids.first().map(String::as_str), Some("t1"));
        assert_eq!(due[0].between, (at(1), at(19)));
        assert_eq!(f.open_windows(), 0);
        // After the window the same cause is news again.
        assert_eq!(f.admit(&s, "t20#1", "t20", at(901)), Admit::First);
    }

    #[test]
    fn duplicates_other_services_and_causes_are_kept_apart() {
        let mut f = Folder::new(Some(Duration::from_secs(60)));
        let a = sig("service:web", "r1");
        f.open(a.clone(), "t0#1", headline(), at(0));
        assert_eq!(f.admit(&a, "t0#1", "t0", at(1)), Admit::Duplicate);
        assert_eq!(f.admit(&sig("service:api", "r1"), "t1#1", "t1", at(1)), Admit::First);
        assert_eq!(f.admit(&sig("service:web", "r2"), "t2#1", "t2", at(1)), Admit::First);
        // A window that folded nothing ends without a summary.
        assert!(f.due(at(61)).is_empty());
    }

    #[test]
    fn no_window_posts_every_stop_and_failed_summaries_come_back() {
        let mut f = Folder::new(None);
        let s = sig("service:web", "r1");
        f.open(s.clone(), "t0#1", headline(), at(0));
        assert_eq!(f.admit(&s, "t1#1", "t1", at(1)), Admit::First);
        let summary = Summary {
            headline: headline(),
            count: 3,
            task_ids: vec![],
            opened: at(0),
            between: (at(1), at(2)),
        };
        f.retry_later(summary.clone());
        assert_eq!(f.due(at(5)), vec![summary]);
        assert!(f.due(at(6)).is_empty());
    }
}
