//! Matching primitives: three-valued truth, `*`/`?` wildcards over actions and resource ARNs, policy variable
//! substitution from the request context, and principal matching for `Principal` / `NotPrincipal`.
//!
//! Sources: Action (reference_policies_elements_action.html: "The prefix and the action name are case
//! insensitive"), Resource (reference_policies_elements_resource.html: `*` "can expand to replace everything
//! within a segment, including characters like a forward slash"), Principal / NotPrincipal
//! (reference_policies_elements_principal.html, reference_policies_elements_notprincipal.html) and Policy variables
//! (reference_policies_variables.html).

use std::collections::{BTreeMap, HashMap};

use super::policy::{sanitize, Principal, PrincipalEntry, PrincipalKind};

/// Three-valued truth: `Unknown` marks what this evaluator cannot decide faithfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    /// Definitely true.
    True,
    /// Definitely false.
    False,
    /// Cannot be decided from the documented behaviour and the supplied data.
    Unknown,
}

impl std::ops::Not for Tri {
    type Output = Tri;

    /// Kleene NOT.
    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

impl Tri {
    /// Lifts a `bool`.
    pub fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }

    /// Kleene AND.
    pub fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Unknown,
        }
    }

    /// Kleene OR.
    pub fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, Tri::False) => Tri::False,
            _ => Tri::Unknown,
        }
    }
}

/// What an evaluation looked at but could not use: context keys that were not supplied and reasons for
/// `Unknown` results.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    missing: BTreeMap<String, String>,
    /// Reasons for `Unknown` results, in the order they arose.
    pub reasons: Vec<String>,
}

impl Trace {
    /// Records a context key that was needed but absent (deduplicated case-insensitively).
    pub fn missing(&mut self, key: &str) {
        self.missing
            .entry(key.to_ascii_lowercase())
            .or_insert_with(|| key.to_string());
    }

    /// Records why something is unknown and returns [`Tri::Unknown`].
    pub fn unknown(&mut self, reason: impl Into<String>) -> Tri {
        self.reasons.push(reason.into());
        Tri::Unknown
    }

    /// The missing context keys, as first written, ordered case-insensitively.
    pub fn missing_keys(&self) -> Vec<String> {
        self.missing.values().cloned().collect()
    }
}

/// Case-insensitive view of the request context ("Context key names are not case-sensitive",
/// reference_policies_elements_condition.html).
#[derive(Debug, Default)]
pub struct ContextView<'a> {
    map: HashMap<String, &'a [String]>,
}

impl<'a> ContextView<'a> {
    /// Builds the view; also returns keys that collide when case is ignored (their values are ambiguous).
    pub fn new(context: &'a BTreeMap<String, Vec<String>>) -> (ContextView<'a>, Vec<String>) {
        let mut map = HashMap::new();
        let mut clashes = Vec::new();
        for (key, values) in context {
            if map.insert(key.to_ascii_lowercase(), values.as_slice()).is_some() {
                clashes.push(key.clone());
            }
        }
        (ContextView { map }, clashes)
    }

    /// The values of `key`, matched case-insensitively; `None` when the key is absent.
    pub fn get(&self, key: &str) -> Option<&'a [String]> {
        self.map.get(&key.to_ascii_lowercase()).copied()
    }
}

/// One element of a wildcard pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// A literal character (including `*`, `?` and `$` produced by `${*}`, `${?}`, `${$}`).
    Lit(char),
    /// `*`: any run of characters, including none, `/` and `:`.
    Star,
    /// `?`: exactly one character.
    One,
}

/// Reads a pattern with no variables: `*` and `?` are wildcards, everything else is literal.
pub fn literal_pattern(pattern: &str) -> Vec<Tok> {
    pattern
        .chars()
        .map(|c| match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        })
        .collect()
}

/// Renders tokens back to text (`*` and `?` as themselves), for operators that compare exactly.
pub fn tokens_to_string(tokens: &[Tok]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            Tok::Lit(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

/// Wildcard match over the whole text. Iterative, no recursion and no allocation: on a mismatch it resumes
/// after the most recent `*`, so the cost is O(pattern × text) in the worst case and linear in the text for a
/// fixed pattern.
pub fn match_tokens(pattern: &[Tok], text: &[char], eq: impl Fn(char, char) -> bool) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Tok::Star) => {
                resume = Some((p + 1, t));
                p += 1;
            }
            Some(Tok::One) => {
                p += 1;
                t += 1;
            }
            Some(Tok::Lit(c)) if eq(*c, text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((after_star, start)) => {
                    p = after_star;
                    t = start + 1;
                    resume = Some((after_star, start + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|k| *k == Tok::Star)
}

/// Case-sensitive wildcard match of a raw pattern (`*`, `?`) against the whole text.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    match_tokens(&literal_pattern(pattern), &text, |a, b| a == b)
}

/// Action matching: wildcards, case-insensitive over service prefix and action name.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let text: Vec<char> = action.chars().collect();
    match_tokens(&literal_pattern(pattern), &text, |a, b| a.eq_ignore_ascii_case(&b))
}

/// Why a pattern with variables could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// A variable's key is absent from the context and has no default: the element matches nothing
    /// ("Policy variables with no value"). The key is recorded in the [`Trace`].
    Missing,
    /// The text cannot be interpreted faithfully; the reason is recorded in the [`Trace`].
    Unknown,
}

/// Substitutes policy variables into `text` and returns the wildcard pattern. With `enabled == false`
/// (policy `Version` not `2012-10-17`) `${...}` is literal text. Variables starting before char position
/// `first_var_pos` are refused (in `Resource`, variables are allowed only after the fifth colon).
///
/// Substituted values are literal (their `*`/`?` are not wildcards): the docs do not say, and the documented
/// sources (user names, tag values) cannot contain those characters.
pub fn expand(
    text: &str,
    ctx: &ContextView<'_>,
    enabled: bool,
    first_var_pos: usize,
    trace: &mut Trace,
) -> Result<Vec<Tok>, Unresolved> {
    if !enabled {
        return Ok(literal_pattern(text));
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
            let Some(end) = closing_brace(&chars, i + 2) else {
                trace.unknown(format!("unterminated policy variable in \"{}\"", sanitize(text)));
                return Err(Unresolved::Unknown);
            };
            if i < first_var_pos {
                trace.unknown("policy variable before the fifth colon of a Resource ARN (not supported by IAM)");
                return Err(Unresolved::Unknown);
            }
            let body: String = chars[i + 2..end].iter().collect();
            out.extend(resolve_variable(&body, ctx, trace)?.chars().map(Tok::Lit));
            i = end + 1;
            continue;
        }
        out.push(match chars[i] {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Lit(c),
        });
        i += 1;
    }
    Ok(out)
}

/// Index of the `}` closing a variable body that starts at `from`, skipping `}` inside single quotes.
fn closing_brace(chars: &[char], from: usize) -> Option<usize> {
    let mut quoted = false;
    (from..chars.len()).find(|&j| {
        if chars[j] == '\'' {
            quoted = !quoted;
        }
        chars[j] == '}' && !quoted
    })
}

fn resolve_variable(body: &str, ctx: &ContextView<'_>, trace: &mut Trace) -> Result<String, Unresolved> {
    match body {
        "*" | "?" | "$" => return Ok(body.to_string()),
        _ => {}
    }
    // `${key, 'default'}`: "surround the default value with single quotes, and separate the variable text and
    // the default value with a comma and space".
    let (key, default) = match body.split_once(',') {
        None => (body.trim(), None),
        Some((key, rest)) => {
            let rest = rest.trim();
            match rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                Some(d) if rest.len() >= 2 => (key.trim(), Some(d)),
                _ => {
                    trace.unknown(format!("malformed default in policy variable ${{{}}}", sanitize(body)));
                    return Err(Unresolved::Unknown);
                }
            }
        }
    };
    if key.is_empty() || key.contains(char::is_whitespace) {
        trace.unknown(format!("malformed policy variable ${{{}}}", sanitize(body)));
        return Err(Unresolved::Unknown);
    }
    match (ctx.get(key), default) {
        (Some([one]), _) => Ok(one.clone()),
        (Some(values), _) if values.len() > 1 => {
            // "You can't use a multivalued condition key as a variable"; what IAM then does is not documented.
            trace.unknown(format!(
                "context key {} has several values and is used as a policy variable",
                sanitize(key)
            ));
            Err(Unresolved::Unknown)
        }
        (_, Some(d)) => {
            // Still reported: the default is right only if the key is truly absent, not merely unsupplied.
            trace.missing(key);
            Ok(d.to_string())
        }
        _ => {
            trace.missing(key);
            Err(Unresolved::Missing)
        }
    }
}

/// How directly a resource-based policy statement names the requesting principal. Ordered weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Strength {
    /// The principal's account (`"123456789012"` or `arn:aws:iam::123456789012:root`): delegates to the account.
    Account = 0,
    /// The IAM role ARN: capped by the role's permissions boundary and session policies.
    Role = 1,
    /// The exact session ARN, the exact principal ARN of a non-role principal, or `"*"`: not capped by
    /// implicit denies in identity policies, boundaries or session policies.
    Direct = 2,
}

/// The requesting principal as parsed from its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Who {
    /// The ARN as given.
    pub arn: String,
    /// ARN partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub partition: String,
    /// The principal's account id.
    pub account: String,
    /// What kind of principal it is.
    pub kind: WhoKind,
}

/// Kinds of requesting principal this evaluator distinguishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhoKind {
    /// `arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`.
    Session {
        /// The assumed role's name.
        role: String,
    },
    /// `arn:aws:iam::ACCT:role/PATH/NAME`.
    Role {
        /// The role's name (last path segment).
        name: String,
    },
    /// Any other ARN (IAM user, federated user, ...): matched only by exact ARN or account.
    Other,
}

impl Who {
    /// Parses a principal ARN; `None` if it is not an ARN with an account.
    pub fn parse(arn: &str) -> Option<Who> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, _region, account, resource] = parts.as_slice() else {
            return None;
        };
        if *prefix != "arn" || account.is_empty() {
            return None;
        }
        let kind = match (*service, resource.split_once('/')) {
            ("sts", Some(("assumed-role", rest))) => match rest.split_once('/') {
                Some((role, session)) if !role.is_empty() && !session.is_empty() => {
                    WhoKind::Session { role: role.to_string() }
                }
                _ => return None,
            },
            ("iam", Some(("role", rest))) => WhoKind::Role {
                name: rest.rsplit('/').next().unwrap_or(rest).to_string(),
            },
            _ => WhoKind::Other,
        };
        Some(Who {
            arn: arn.to_string(),
            partition: partition.to_string(),
            account: account.to_string(),
            kind,
        })
    }

    /// The role ARN behind a session (without path: the session ARN does not carry it), or the ARN itself.
    pub fn role_arn(&self) -> String {
        match &self.kind {
            WhoKind::Session { role } => format!("arn:{}:iam::{}:role/{}", self.partition, self.account, role),
            _ => self.arn.clone(),
        }
    }

    /// The levels that name this principal, most specific first (used by `NotPrincipal`).
    fn chain(&self) -> &'static [Strength] {
        match self.kind {
            WhoKind::Session { .. } => &[Strength::Direct, Strength::Role, Strength::Account],
            WhoKind::Role { .. } => &[Strength::Role, Strength::Account],
            WhoKind::Other => &[Strength::Direct, Strength::Account],
        }
    }
}

/// Matches one listed principal. Principal ARNs cannot contain wildcards ("You cannot use a wildcard to match
/// part of a principal name or ARN"), so comparison is exact. A unique id (`AROA...`) left in a policy after its
/// role was deleted names no current principal. Service and federated principals never name an IAM role or
/// session; a canonical user id names an account this evaluator cannot map, so it is unknown.
fn entry_match(entry: &PrincipalEntry, who: &Who) -> Option<(Strength, Tri)> {
    let v = entry.value.as_str();
    match entry.kind {
        PrincipalKind::Service | PrincipalKind::Federated => None,
        PrincipalKind::CanonicalUser => Some((Strength::Account, Tri::Unknown)),
        PrincipalKind::Aws if v == "*" => Some((Strength::Direct, Tri::True)),
        PrincipalKind::Aws if v == who.account || v == format!("arn:{}:iam::{}:root", who.partition, who.account) => {
            Some((Strength::Account, Tri::True))
        }
        PrincipalKind::Aws if v == who.arn => Some((
            if matches!(who.kind, WhoKind::Role { .. }) {
                Strength::Role
            } else {
                Strength::Direct
            },
            Tri::True,
        )),
        PrincipalKind::Aws => match (&who.kind, Who::parse(v)) {
            // Role names are unique within an account, so a role ARN (with any path) names the session's role.
            (WhoKind::Session { role }, Some(listed)) => match listed.kind {
                WhoKind::Role { name }
                    if &name == role && listed.account == who.account && listed.partition == who.partition =>
                {
                    Some((Strength::Role, Tri::True))
                }
                _ => None,
            },
            _ => None,
        },
    }
}

/// For a `Principal` element: `at_least[s]` tells whether the element names the principal with strength `s`
/// or stronger (index by `Strength as usize`).
pub fn principal_grants(principal: &Principal, who: &Who, trace: &mut Trace) -> [Tri; 3] {
    let entries = match principal {
        Principal::Wildcard => return [Tri::True; 3],
        Principal::Entries(entries) => entries,
    };
    let mut at_least = [Tri::False; 3];
    for entry in entries {
        if let Some((strength, t)) = entry_match(entry, who) {
            if t == Tri::Unknown {
                trace.unknown(format!(
                    "cannot tell whether CanonicalUser {} is the principal's account",
                    sanitize(&entry.value)
                ));
            }
            for slot in at_least.iter_mut().take(strength as usize + 1) {
                *slot = slot.or(t);
            }
        }
    }
    at_least
}

/// For a `NotPrincipal` element: whether the statement applies to the principal. AWS "might validate the
/// account first, then the role, and then the assumed-role user", so the principal is exempt only when every
/// level of its chain (session, role, account) is listed; none listed means the statement applies; anything in
/// between is unknown.
pub fn not_principal_applies(principal: &Principal, who: &Who, trace: &mut Trace) -> Tri {
    let entries = match principal {
        Principal::Wildcard => return Tri::False,
        Principal::Entries(entries) => entries,
    };
    if entries.iter().any(|e| e.kind == PrincipalKind::Aws && e.value == "*") {
        return Tri::False;
    }
    let mut named = [false; 3];
    let mut unsure = false;
    for entry in entries {
        match entry_match(entry, who) {
            Some((strength, Tri::True)) => named[strength as usize] = true,
            Some(_) => unsure = true,
            None => {}
        }
    }
    let chain = who.chain();
    let covered = chain.iter().filter(|s| named[**s as usize]).count();
    if covered == chain.len() {
        Tri::False
    } else if covered == 0 && !unsure {
        Tri::True
    } else {
        trace.unknown("NotPrincipal lists only part of the principal's session/role/account chain")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Obviously-correct reference: recursive definition of `*` / `?` matching.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|k| reference(rest, &t[k..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    proptest! {
        // Fixed case count and seed: deterministic, and no failure-persistence files in the source tree.
        #![proptest_config(ProptestConfig {
            cases: 256,
            rng_seed: proptest::test_runner::RngSeed::Fixed(0x1a4e_5eed),
            failure_persistence: None,
            ..ProptestConfig::default()
        })]
        #[test]
        fn glob_agrees_with_reference(pattern in "[ab*?:/]{0,10}", text in "[ab:/]{0,12}") {
            let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
            prop_assert_eq!(glob_match(&pattern, &text), reference(&p, &t));
        }
    }

    #[test]
    fn actions_and_resources() {
        assert!(action_matches("ECR:Get*", "ecr:GetAuthorizationToken"));
        assert!(action_matches("*", "s3:GetObject"));
        assert!(action_matches("s3:Get?bject", "s3:GetObject"));
        assert!(!action_matches("s3:Get", "s3:GetObject"));
        assert!(glob_match("arn:aws:s3:::b/*", "arn:aws:s3:::b/1/2:3/x.jpg"));
        assert!(!glob_match("arn:aws:s3:::B/*", "arn:aws:s3:::b/x"));
    }

    #[test]
    fn variables() {
        let ctx: BTreeMap<String, Vec<String>> = [
            ("aws:username".to_string(), vec!["ana".to_string()]),
            ("m".to_string(), vec!["1".into(), "2".into()]),
        ]
        .into();
        let (view, _) = ContextView::new(&ctx);
        let mut tr = Trace::default();
        let t = expand("a/${AWS:UserName}/${*}${?}${$}*", &view, true, 0, &mut tr).expect("resolves");
        assert_eq!(t.last(), Some(&Tok::Star));
        assert_eq!(tokens_to_string(&t[..t.len() - 1]), "a/ana/*?$");
        assert_eq!(t[t.len() - 4], Tok::Lit('*'));
        let t = expand("${aws:PrincipalTag/team, 'company-wide'}", &view, true, 0, &mut tr).expect("default");
        assert_eq!(tokens_to_string(&t), "company-wide");
        assert_eq!(
            expand("${aws:userid}", &view, true, 0, &mut tr),
            Err(Unresolved::Missing)
        );
        assert_eq!(tr.missing_keys(), vec!["aws:PrincipalTag/team", "aws:userid"]);
        assert_eq!(expand("${m}", &view, true, 0, &mut tr), Err(Unresolved::Unknown));
        assert_eq!(
            expand("${aws:username", &view, true, 0, &mut tr),
            Err(Unresolved::Unknown)
        );
        assert_eq!(
            expand("x${aws:username}", &view, true, 5, &mut tr),
            Err(Unresolved::Unknown)
        );
        assert_eq!(
            tokens_to_string(&expand("${aws:username}", &view, false, 0, &mut tr).expect("lit")),
            "${aws:username}"
        );
    }

    #[test]
    fn principals() {
        let who = Who::parse("arn:aws:sts::111122223333:assumed-role/app/task").expect("session");
        let mut tr = Trace::default();
        let grants = |p: &str, tr: &mut Trace| {
            principal_grants(
                &Principal::Entries(vec![PrincipalEntry {
                    kind: PrincipalKind::Aws,
                    value: p.into(),
                }]),
                &who,
                tr,
            )
        };
        assert_eq!(grants("111122223333", &mut tr), [Tri::True, Tri::False, Tri::False]);
        assert_eq!(
            grants("arn:aws:iam::111122223333:root", &mut tr),
            [Tri::True, Tri::False, Tri::False]
        );
        assert_eq!(
            grants("arn:aws:iam::111122223333:role/svc/app", &mut tr),
            [Tri::True, Tri::True, Tri::False]
        );
        assert_eq!(grants(&who.arn, &mut tr), [Tri::True; 3]);
        assert_eq!(grants("arn:aws:iam::999999999999:role/app", &mut tr), [Tri::False; 3]);
        assert_eq!(who.role_arn(), "arn:aws:iam::111122223333:role/app");
        let role = Who::parse("arn:aws:iam::111122223333:role/path/app").expect("role");
        assert_eq!(role.kind, WhoKind::Role { name: "app".into() });
        assert!(Who::parse("not-an-arn").is_none());
    }
}
