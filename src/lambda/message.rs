//! The messages the runner posts: the markdown verdict (`render::markdown`, already redacted and
//! chat-safe) under a header naming the cluster, the service, the task and a console link; the
//! summary of the stops folded into a window; and the payload shape of each webhook format.
//!
//! A message is kept within [`super::config::Config::message_limit`] bytes by cutting evidence
//! first (fewer quoted lines, shorter quotes, no notes, no policy snippet), then the tail of the
//! text; the headline (the verdict line) and the header are never cut.

use std::time::SystemTime;

use serde_json::json;

use super::config::WebhookFormat;
use super::dedup::Summary;
use crate::arn::Arn;
use crate::evidence::{Task, Timestamp};
use crate::render::{RenderOptions, Styles};
use crate::sanitize::markdown_code;
use crate::verdict::Diagnosis;

/// How a cut message ends.
pub const CUT_MARKER: &str = "_… cut to fit the chat message limit; `ecsdoctor why --event` shows everything._";

/// Findings quoted when the message has room.
pub const EVIDENCE_LINES: usize = 8;

/// Task ids a summary lists at most (the count covers the rest).
pub const SUMMARY_TASKS_SHOWN: usize = 10;

/// Where a task ran, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The cluster's name.
    pub cluster: String,
    /// `service NAME`, `family NAME`, or empty.
    pub service: String,
    /// The task id.
    pub task_id: String,
    /// The ECS console page of the task, when every part of it is a plain name.
    pub console_url: Option<String>,
}

impl Header {
    /// The header of a task from an event.
    pub fn of(task: &Task) -> Header {
        let arn = task.task_arn.as_deref().and_then(Arn::parse);
        let task_id = arn
            .map(|a| a.resource_name().to_string())
            .or_else(|| task.task_arn.clone())
            .unwrap_or_else(|| "(no taskArn)".into());
        let cluster = task
            .cluster_arn
            .as_deref()
            .and_then(Arn::parse)
            .map(|a| a.resource_name().to_string())
            .or_else(|| task.cluster_arn.clone())
            .unwrap_or_else(|| "default".into());
        let service = match task.group.as_deref() {
            Some(g) => match g.split_once(':') {
                Some(("service", name)) => format!("service {name}"),
                Some(("family", name)) => format!("family {name}"),
                _ => g.to_string(),
            },
            None => String::new(),
        };
        let console_url = arn.and_then(|a| console_url(a.partition, a.region, &cluster, &task_id));
        Header {
            cluster,
            service,
            task_id,
            console_url,
        }
    }

    fn markdown(&self) -> String {
        let mut line = format!("**Stopped ECS task** · cluster `{}`", markdown_code(&self.cluster));
        if let Some((kind, name)) = self.service.split_once(' ') {
            line.push_str(&format!(" · {kind} `{}`", markdown_code(name)));
        }
        line.push_str(&format!(" · task `{}`", markdown_code(&self.task_id)));
        if let Some(url) = &self.console_url {
            // A bare URL: every target autolinks it, and it was built from checked names only.
            line.push('\n');
            line.push_str(url);
        }
        line.push_str("\n\n");
        line
    }
}

/// The ECS console page of a task. Every part must be a plain name (the console's own
/// characters: letters, digits, `-`, `_`), so nothing from the event can shape the link.
pub fn console_url(partition: &str, region: &str, cluster: &str, task_id: &str) -> Option<String> {
    let plain = |s: &str| {
        !s.is_empty() && s.len() <= 255 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !(plain(region) && plain(cluster) && plain(task_id)) {
        return None;
    }
    let host = match partition {
        "aws" => "console.aws.amazon.com",
        "aws-cn" => "console.amazonaws.cn",
        "aws-us-gov" => "console.amazonaws-us-gov.com",
        _ => return None,
    };
    Some(format!(
        "https://{host}/ecs/v2/clusters/{cluster}/tasks/{task_id}/configuration?region={region}"
    ))
}

/// The message for one stop: the header, then the markdown verdict, within `limit` bytes.
pub fn compose(d: &Diagnosis, header: &Header, limit: usize) -> String {
    let head = header.markdown();
    let budget = limit.saturating_sub(head.len());
    let mut trimmed = d.clone();
    // Cheapest losses first: fewer quoted lines, then shorter quotes and no remarks, then the
    // policy snippets (the fix line itself stays).
    for stage in 0..4 {
        let lines = match stage {
            0 => EVIDENCE_LINES,
            1 => 3,
            _ => 1,
        };
        if stage == 2 {
            for f in &mut trimmed.findings {
                if f.evidence.len() > 300 {
                    let (cut, _) = crate::sanitize::truncate(&f.evidence, 300);
                    f.evidence = format!("{cut} [truncated]");
                }
            }
            let dropped = trimmed.notes.len() + trimmed.verdict.also.len();
            trimmed.notes.clear();
            trimmed.verdict.also.clear();
            if dropped > 0 {
                trimmed
                    .notes
                    .push(format!("{dropped} note(s) left out to fit the message"));
            }
        }
        if stage == 3 {
            trimmed.verdict.iam_policy = None;
            trimmed.verdict.terraform = None;
        }
        let body = render(&trimmed, lines);
        if body.len() <= budget {
            return head + &body;
        }
    }
    head + &cut_to(&render(&trimmed, 1), budget)
}

fn render(d: &Diagnosis, evidence: usize) -> String {
    let opts = RenderOptions {
        styles: Styles::default(),
        max_evidence: evidence,
    };
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = crate::render::markdown::diagnosis(d, &opts, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Cuts markdown to `budget` bytes at a line boundary, keeps the first line whatever it costs,
/// closes a code fence left open and ends with [`CUT_MARKER`].
pub fn cut_to(text: &str, budget: usize) -> String {
    if text.len() <= budget {
        return text.to_string();
    }
    let room = budget.saturating_sub(CUT_MARKER.len() + 8);
    let mut out = String::new();
    let mut fenced = false;
    for (i, line) in text.lines().enumerate() {
        let cost = line.len() + 1 + if fenced || line.starts_with("```") { 4 } else { 0 };
        if i > 0 && out.len() + cost > room {
            break;
        }
        out.push_str(line);
        out.push('\n');
        if line.starts_with("```") {
            fenced = !fenced;
        }
    }
    if fenced {
        out.push_str("```\n");
    }
    out.push_str(CUT_MARKER);
    out.push('\n');
    out
}

/// The summary of the stops folded into one window, within `limit` bytes.
pub fn summary(s: &Summary, limit: usize) -> String {
    let h = &s.headline;
    let mut head = format!(
        "**ecsdoctor — {} more {} with the same cause** · cluster `{}`",
        s.count,
        if s.count == 1 { "task stopped" } else { "tasks stopped" },
        markdown_code(&h.cluster)
    );
    if let Some((kind, name)) = h.service.split_once(' ') {
        head.push_str(&format!(" · {kind} `{}`", markdown_code(name)));
    }
    head.push_str("\n\n");
    head.push_str(&format!(
        "- **Cause:** {}\n- **Stopped:** {} .. {} (first message at {})\n",
        crate::sanitize::markdown_inline(&h.text),
        iso(s.between.0),
        iso(s.between.1),
        iso(s.opened)
    ));
    let mut shown = s.task_ids.len().min(SUMMARY_TASKS_SHOWN);
    loop {
        let ids: Vec<String> = s.task_ids[..shown]
            .iter()
            .map(|t| format!("`{}`", markdown_code(t)))
            .collect();
        let more = s.count - shown;
        let tail = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        let text = format!("{head}- **Tasks:** {}{tail}\n", ids.join(", "));
        if text.len() <= limit || shown == 0 {
            return text;
        }
        shown = shown.saturating_sub(shown / 4 + 1);
    }
}

fn iso(t: SystemTime) -> String {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp(ms).to_iso()
}

/// The JSON body for a webhook of this format.
pub fn payload(format: WebhookFormat, text: &str) -> serde_json::Value {
    match format {
        WebhookFormat::Slack => json!({ "text": text }),
        WebhookFormat::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{ "type": "TextBlock", "text": text, "wrap": true }]
                }
            }]
        }),
        // Chime renders markdown only in messages that start with `/md`.
        WebhookFormat::Chime => json!({ "Content": format!("/md {text}") }),
    }
}

/// An SNS subject (at most 100 printable ASCII characters, no line breaks).
pub fn sns_subject(header: &Header) -> String {
    let raw = format!("ecsdoctor: stopped task in {} {}", header.cluster, header.service);
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .take(100)
        .collect();
    clean
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Evidence;
    use crate::lambda::dedup::Headline;
    use crate::rules::engine::Matcher;
    use crate::verdict::{diagnose, Options};
    use std::time::Duration;

    fn event_task(name: &str) -> Task {
        let path = format!("{}/tests/fixtures-events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).expect("read sample");
        crate::source::event::parse_event(&text, name).expect("sample parses")
    }

    fn diagnosis(task: &Task) -> Diagnosis {
        let matcher = Matcher::load(true, &[]).expect("rules");
        let ev = Evidence {
            task: task.clone(),
            ..Evidence::default()
        };
        diagnose(&ev, &matcher, &Options::default())
    }

    #[test]
    fn header_names_cluster_service_task_and_links_the_console() {
        let t = event_task("ssm-secrets-denied.json");
        let h = Header::of(&t);
        assert_eq!(h.cluster, "FargateCluster");
        assert_eq!(h.service, "family sample-fargate");
        assert_eq!(h.task_id, "c13b4cb40f1f4fe4a2971f76ae5a47ad");
        assert_eq!(
            h.console_url.as_deref(),
            Some("https://console.aws.amazon.com/ecs/v2/clusters/FargateCluster/tasks/c13b4cb40f1f4fe4a2971f76ae5a47ad/configuration?region=us-west-2")
        );
        let text = compose(&diagnosis(&t), &h, 4000);
        assert!(
            text.starts_with("**Stopped ECS task** · cluster `FargateCluster` · family `sample-fargate`"),
            "{text}"
        );
        assert!(
            text.contains("\n**ecsdoctor — IAM: the task execution role:**"),
            "{text}"
        );
        assert!(text.contains("ssm:GetParameters"), "{text}");
    }

    #[test]
    fn a_hostile_cluster_name_gets_no_link() {
        assert!(console_url("aws", "us-east-1", "prod](https://evil.example)", "abc").is_none());
        assert!(console_url("aws", "us-east-1", "prod", "abc?x=1").is_none());
        assert!(console_url("aws-iso", "us-east-1", "prod", "abc").is_none());
    }

    #[test]
    fn the_limit_cuts_evidence_never_the_verdict_line() {
        let mut t = event_task("ssm-secrets-denied.json");
        // A long container reason and many notes: more than fits.
        t.containers[0].reason = Some(format!("CannotStartContainerError: {}", "x".repeat(5000)));
        let mut d = diagnosis(&t);
        d.notes = (0..200).map(|i| format!("note {i} {}", "y".repeat(50))).collect();
        let h = Header::of(&t);
        let full = compose(&d, &h, 40_000);
        for limit in [1_000, 2_000, 4_000] {
            let text = compose(&d, &h, limit);
            assert!(text.len() <= limit, "{} > {limit}", text.len());
            let verdict_line = full
                .lines()
                .find(|l| l.starts_with("**ecsdoctor"))
                .expect("verdict line");
            assert!(text.contains(verdict_line), "{limit}: {text}");
            assert_eq!(text.matches("```").count() % 2, 0, "fences balanced\n{text}");
        }
    }

    #[test]
    fn cut_closes_an_open_fence() {
        let text = format!("**head**\n```\n{}\n```\n", "line\n".repeat(500));
        let cut = cut_to(&text, 300);
        assert!(cut.len() <= 300, "{}", cut.len());
        assert!(cut.starts_with("**head**"));
        assert_eq!(cut.matches("```").count(), 2, "{cut}");
        assert!(cut.ends_with(&format!("{CUT_MARKER}\n")));
    }

    #[test]
    fn summary_counts_and_fits() {
        let s = Summary {
            headline: Headline {
                text: "IAM: the task execution role: cannot read `db` @channel".into(),
                cluster: "prod".into(),
                service: "service web".into(),
            },
            count: 400,
            task_ids: (0..400).map(|i| format!("{i:032x}")).collect(),
            opened: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            between: (
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_001),
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_100),
            ),
        };
        let text = summary(&s, 2_000);
        assert!(text.len() <= 2_000, "{}", text.len());
        assert!(
            text.starts_with(
                "**ecsdoctor — 400 more tasks stopped with the same cause** · cluster `prod` · service `web`"
            ),
            "{text}"
        );
        assert!(text.contains("more\n"), "{text}");
        assert!(!text.contains("@channel"), "{text}");
    }

    #[test]
    fn payload_shapes() {
        assert_eq!(payload(WebhookFormat::Slack, "hi"), json!({"text": "hi"}));
        assert_eq!(payload(WebhookFormat::Chime, "hi"), json!({"Content": "/md hi"}));
        let teams = payload(WebhookFormat::Teams, "hi");
        assert_eq!(teams["attachments"][0]["content"]["body"][0]["text"], "hi");
        let h = Header {
            cluster: "prod\u{1b}[31m".into(),
            service: "service web".into(),
            task_id: "x".into(),
            console_url: None,
        };
        let subject = sns_subject(&h);
        assert!(
            subject.len() <= 100 && subject.chars().all(|c| c.is_ascii_graphic() || c == ' '),
            "{subject}"
        );
    }
}
