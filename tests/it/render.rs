//! Snapshot tests of the three output formats for every fixture bundle: one fixture gives a text,
//! a markdown and a JSON snapshot, so any change in what a user sees is a reviewed diff.

use std::path::Path;

use ecsdoctor::cli::Format;
use ecsdoctor::render::{self, RenderOptions, Styles};
use ecsdoctor::rules::engine::Matcher;
use ecsdoctor::source::bundle::{load, Bundle};
use ecsdoctor::source::Limits;
use ecsdoctor::verdict::{diagnose, Options};

fn render_all(dir: &Path, m: &Matcher) -> (String, String, String) {
    let ev = load(&Bundle::Dir(dir.to_path_buf()), None, &Limits::default()).expect("fixture loads");
    let d = diagnose(&ev, m, &Options::default());
    let opts = RenderOptions {
        styles: Styles::default(),
        max_evidence: 8,
    };
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for (buf, f) in out.iter_mut().zip([Format::Text, Format::Markdown, Format::Json]) {
        render::diagnosis(&d, f, &opts, buf).expect("render");
    }
    let [t, md, js] = out.map(|b| String::from_utf8(b).expect("utf8"));
    (t, md, js)
}

#[test]
fn render_every_fixture_in_every_format() {
    let m = Matcher::load(true, &[]).expect("built-in rules");
    insta::glob!("../fixtures", "*/describe-tasks.json", |path| {
        let dir = path.parent().expect("fixture dir");
        let (text, md, json) = render_all(dir, &m);
        insta::assert_snapshot!("text", text);
        insta::assert_snapshot!("markdown", md);
        insta::assert_snapshot!("json", json);
    });
}

#[test]
fn plain_styles_never_emit_escapes() {
    let m = Matcher::load(true, &[]).expect("built-in rules");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/exec-ssm-denied");
    let (text, md, json) = render_all(&dir, &m);
    for s in [text, md, json] {
        assert!(!s.contains('\x1b'));
    }
}
