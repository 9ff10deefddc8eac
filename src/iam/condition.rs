//! Evaluates a statement's `Condition` block against the request context.
//!
//! Sources: IAM JSON policy elements: Condition operators (reference_policies_elements_condition_operators.html),
//! Multiple context keys or values (reference_policies_multi-value-conditions.html,
//! reference_policies_condition-single-vs-multi-valued-context-keys.html) and Policy variables
//! (reference_policies_variables.html). Documented rules implemented here:
//! - several operators or keys are ANDed, several values for one key are ORed; for negated operators
//!   (`StringNotEquals`, `NotIpAddress`, ...) the request value must match none of the values;
//! - an absent key makes a condition false, except negated operators (true), `...IfExists` (true),
//!   `ForAllValues` (true, also for an empty set) and `Null`; `ForAnyValue` is false for an absent key or empty set;
//! - key names are case-insensitive; values are case-sensitive unless the operator is `...IgnoreCase`;
//! - policy variables are substituted only for string and ARN operators; a variable with no value makes
//!   positive operators not match and negated ones match.
//!
//! Undocumented situations are `Unknown` (the statement becomes indeterminate), never silently true or false:
//! unknown operator names, a plain operator given several request values, an empty value list for a plain
//! operator, unparseable numbers/dates/booleans/base64/IPs, a bare IPv6 address (only the IPv4 `/32` default is
//! documented), reduced-precision ISO 8601 dates (`2020`, `2020-01`, `2020-01-01`), ARNs without six parts.

use std::cmp::Ordering;
use std::net::IpAddr;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::matching::{expand, match_tokens, tokens_to_string, ContextView, Tok, Trace, Tri, Unresolved};
use super::policy::{sanitize, ConditionClause};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Str,
    StrIgnoreCase,
    StrLike,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    ForAllValues,
    ForAnyValue,
}

#[derive(Debug, Clone, Copy)]
struct Operator {
    family: Family,
    cmp: Cmp,
    negated: bool,
    if_exists: bool,
    set: Option<SetOp>,
}

/// Base operator names (case-sensitive as documented): family, comparison, negated.
const BASES: &[(&str, Family, Cmp, bool)] = &[
    ("StringEquals", Family::Str, Cmp::Eq, false),
    ("StringNotEquals", Family::Str, Cmp::Eq, true),
    ("StringEqualsIgnoreCase", Family::StrIgnoreCase, Cmp::Eq, false),
    ("StringNotEqualsIgnoreCase", Family::StrIgnoreCase, Cmp::Eq, true),
    ("StringLike", Family::StrLike, Cmp::Eq, false),
    ("StringNotLike", Family::StrLike, Cmp::Eq, true),
    ("NumericEquals", Family::Numeric, Cmp::Eq, false),
    ("NumericNotEquals", Family::Numeric, Cmp::Eq, true),
    ("NumericLessThan", Family::Numeric, Cmp::Lt, false),
    ("NumericLessThanEquals", Family::Numeric, Cmp::Le, false),
    ("NumericGreaterThan", Family::Numeric, Cmp::Gt, false),
    ("NumericGreaterThanEquals", Family::Numeric, Cmp::Ge, false),
    ("DateEquals", Family::Date, Cmp::Eq, false),
    ("DateNotEquals", Family::Date, Cmp::Eq, true),
    ("DateLessThan", Family::Date, Cmp::Lt, false),
    ("DateLessThanEquals", Family::Date, Cmp::Le, false),
    ("DateGreaterThan", Family::Date, Cmp::Gt, false),
    ("DateGreaterThanEquals", Family::Date, Cmp::Ge, false),
    ("Bool", Family::Bool, Cmp::Eq, false),
    ("BinaryEquals", Family::Binary, Cmp::Eq, false),
    ("IpAddress", Family::Ip, Cmp::Eq, false),
    ("NotIpAddress", Family::Ip, Cmp::Eq, true),
    ("ArnEquals", Family::Arn, Cmp::Eq, false),
    ("ArnLike", Family::Arn, Cmp::Eq, false),
    ("ArnNotEquals", Family::Arn, Cmp::Eq, true),
    ("ArnNotLike", Family::Arn, Cmp::Eq, true),
    ("Null", Family::Null, Cmp::Eq, false),
];

fn parse_operator(name: &str) -> Option<Operator> {
    let (set, rest) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (Some(SetOp::ForAllValues), rest)
    } else if let Some(rest) = name.strip_prefix("ForAnyValue:") {
        (Some(SetOp::ForAnyValue), rest)
    } else {
        (None, name)
    };
    let (if_exists, base) = match rest.strip_suffix("IfExists") {
        Some(base) => (true, base),
        None => (false, rest),
    };
    let &(_, family, cmp, negated) = BASES.iter().find(|(n, ..)| *n == base)?;
    // "You can add IfExists to the end of any condition operator name except the Null condition"; set
    // qualifiers on Null are not documented either.
    if family == Family::Null && (if_exists || set.is_some()) {
        return None;
    }
    Some(Operator {
        family,
        cmp,
        negated,
        if_exists,
        set,
    })
}

/// Evaluates all clauses of a `Condition` block (logical AND). `variables` enables `${...}` substitution.
pub fn evaluate_condition(
    clauses: &[ConditionClause],
    ctx: &ContextView<'_>,
    variables: bool,
    trace: &mut Trace,
) -> Tri {
    let mut result = Tri::True;
    for clause in clauses {
        result = result.and(evaluate_clause(clause, ctx, variables, trace));
        if result == Tri::False {
            break;
        }
    }
    result
}

fn evaluate_clause(clause: &ConditionClause, ctx: &ContextView<'_>, variables: bool, trace: &mut Trace) -> Tri {
    let Some(op) = parse_operator(&clause.operator) else {
        return trace.unknown(format!("unknown condition operator \"{}\"", sanitize(&clause.operator)));
    };
    let present = ctx.get(&clause.key);
    if op.family == Family::Null {
        return null_check(clause, present, trace);
    }
    let Some(request_values) = present else {
        trace.missing(&clause.key);
        let absent_is_true = op.if_exists || op.set == Some(SetOp::ForAllValues) || (op.negated && op.set.is_none());
        return Tri::from_bool(absent_is_true);
    };
    let key = sanitize(&clause.key);
    let policy_values = prepare(&op, clause, ctx, variables, trace);
    let test = |r: &str, trace: &mut Trace| {
        let positive = policy_values.iter().fold(Tri::False, |acc, p| match p {
            Ok(p) => acc.or(compare(&op, p, r, trace)),
            Err(Unresolved::Missing) => acc, // "effectively null": no equal or like value
            Err(Unresolved::Unknown) => acc.or(Tri::Unknown),
        });
        if op.negated {
            !positive
        } else {
            positive
        }
    };
    match (op.set, request_values) {
        (Some(SetOp::ForAllValues), []) => Tri::True,
        (Some(SetOp::ForAnyValue), []) => Tri::False,
        (None, []) => trace.unknown(format!("context key {key} is present with no values")),
        (None, [one]) => test(one, trace),
        (None, _) => trace.unknown(format!(
            "context key {key} has several values but {} has no ForAllValues/ForAnyValue qualifier",
            sanitize(&clause.operator)
        )),
        (Some(SetOp::ForAllValues), values) => values.iter().fold(Tri::True, |acc, r| acc.and(test(r, trace))),
        (Some(SetOp::ForAnyValue), values) => values.iter().fold(Tri::False, |acc, r| acc.or(test(r, trace))),
    }
}

/// Policy values as patterns; variables are substituted only where the docs allow them (string and ARN).
fn prepare(
    op: &Operator,
    clause: &ConditionClause,
    ctx: &ContextView<'_>,
    variables: bool,
    trace: &mut Trace,
) -> Vec<Result<Vec<Tok>, Unresolved>> {
    let substitutes = matches!(
        op.family,
        Family::Str | Family::StrIgnoreCase | Family::StrLike | Family::Arn
    );
    clause
        .values
        .iter()
        .map(|v| {
            if substitutes {
                expand(v, ctx, variables, 0, trace)
            } else {
                Ok(v.chars().map(Tok::Lit).collect())
            }
        })
        .collect()
}

fn null_check(clause: &ConditionClause, present: Option<&[String]>, trace: &mut Trace) -> Tri {
    let is_null = match present {
        None => {
            trace.missing(&clause.key);
            true
        }
        Some([]) => {
            return trace.unknown(format!(
                "Null check on {} with an empty value list",
                sanitize(&clause.key)
            ))
        }
        Some(_) => false,
    };
    clause.values.iter().fold(Tri::False, |acc, v| {
        acc.or(match v.as_str() {
            "true" => Tri::from_bool(is_null),
            "false" => Tri::from_bool(!is_null),
            other => trace.unknown(format!(
                "Null expects \"true\" or \"false\", found \"{}\"",
                sanitize(other)
            )),
        })
    })
}

fn compare(op: &Operator, pattern: &[Tok], request: &str, trace: &mut Trace) -> Tri {
    let text = tokens_to_string(pattern);
    let ordered = |ord: Ordering| match op.cmp {
        Cmp::Eq => ord == Ordering::Equal,
        Cmp::Lt => ord == Ordering::Less,
        Cmp::Le => ord != Ordering::Greater,
        Cmp::Gt => ord == Ordering::Greater,
        Cmp::Ge => ord != Ordering::Less,
    };
    let unreadable = |trace: &mut Trace, what: &str| {
        trace.unknown(format!(
            "cannot read {what} \"{}\" or \"{}\"",
            sanitize(&text),
            sanitize(request)
        ))
    };
    match op.family {
        Family::Str => Tri::from_bool(text == request),
        Family::StrIgnoreCase => Tri::from_bool(text.to_lowercase() == request.to_lowercase()),
        Family::StrLike => Tri::from_bool(match_tokens(pattern, &request.chars().collect::<Vec<_>>(), |a, b| {
            a == b
        })),
        Family::Arn => arn_like(pattern, request).map_or_else(|| unreadable(trace, "ARN"), Tri::from_bool),
        Family::Numeric => match (decimal(&text), decimal(request)) {
            (Some(p), Some(r)) => Tri::from_bool(ordered(cmp_decimal(&r, &p))),
            _ => unreadable(trace, "number"),
        },
        Family::Date => match (date(&text), date(request)) {
            (Some(p), Some(r)) => Tri::from_bool(ordered(r.cmp(&p))),
            _ => unreadable(trace, "date (ISO 8601 date-time with zone, or epoch seconds)"),
        },
        Family::Bool => match (text.as_str(), request) {
            ("true" | "false", "true" | "false") => Tri::from_bool(text == request),
            _ => unreadable(trace, "boolean"),
        },
        Family::Binary => match (base64(&text), base64(request)) {
            (Some(p), Some(r)) => Tri::from_bool(p == r),
            _ => unreadable(trace, "base64"),
        },
        Family::Ip => {
            cidr_contains(&text, request).map_or_else(|| unreadable(trace, "IP address/CIDR"), Tri::from_bool)
        }
        Family::Null => Tri::Unknown, // handled by null_check
    }
}

/// ArnEquals/ArnLike: "Each of the six colon-delimited components of the ARN is checked separately".
fn arn_like(pattern: &[Tok], value: &str) -> Option<bool> {
    let mut segments: Vec<&[Tok]> = Vec::with_capacity(6);
    let mut start = 0;
    for (i, t) in pattern.iter().enumerate() {
        if segments.len() < 5 && *t == Tok::Lit(':') {
            segments.push(&pattern[start..i]);
            start = i + 1;
        }
    }
    segments.push(&pattern[start..]);
    let values: Vec<&str> = value.splitn(6, ':').collect();
    if segments.len() != 6 || values.len() != 6 {
        return None;
    }
    let seg_match = |(p, v): (&&[Tok], &&str)| match_tokens(p, &v.chars().collect::<Vec<_>>(), |a, b| a == b);
    Some(segments.iter().zip(values.iter()).all(seg_match))
}

/// An exact decimal: (negative, integer digits without leading zeros, fraction digits without trailing zeros).
type Decimal = (bool, String, String);

fn decimal(text: &str) -> Option<Decimal> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return None;
    }
    let (int, frac) = (int.trim_start_matches('0'), frac.trim_end_matches('0'));
    let zero = int.is_empty() && frac.is_empty();
    Some((negative && !zero, int.to_string(), frac.to_string()))
}

fn cmp_decimal(a: &Decimal, b: &Decimal) -> Ordering {
    match (a.0, b.0) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (negative, _) => {
            let magnitude =
                a.1.len()
                    .cmp(&b.1.len())
                    .then_with(|| a.1.cmp(&b.1))
                    .then_with(|| a.2.cmp(&b.2));
            if negative {
                magnitude.reverse()
            } else {
                magnitude
            }
        }
    }
}

/// Dates: W3C ISO 8601 date-times with a time zone (seconds optional) or epoch seconds; as Unix nanoseconds.
fn date(text: &str) -> Option<i128> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = text.parse().ok()?;
        return OffsetDateTime::from_unix_timestamp(secs)
            .ok()
            .map(|d| d.unix_timestamp_nanos());
    }
    let with_seconds;
    let text = match text.as_bytes().get(16) {
        // `YYYY-MM-DDThh:mmTZD` (W3C "complete date plus hours and minutes").
        Some(b'Z' | b'+' | b'-') if text.as_bytes().get(13) == Some(&b':') => {
            with_seconds = format!("{}:00{}", &text[..16], &text[16..]);
            with_seconds.as_str()
        }
        _ => text,
    };
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(|d| d.unix_timestamp_nanos())
}

/// Standard base64 (RFC 4648 alphabet, padding optional).
fn base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8); // `acc` keeps fewer than 8 + `bits` bits, so this fits a byte
            acc &= (1 << bits) - 1;
        }
    }
    (bits < 6).then_some(out)
}

/// Whether `ip` lies in `cidr`; a bare IPv4 address means `/32` ("IAM uses the default prefix value of /32").
fn cidr_contains(cidr: &str, ip: &str) -> Option<bool> {
    let addr: IpAddr = ip.trim().parse().ok()?;
    let (net, len) = match cidr.trim().split_once('/') {
        Some((net, len)) => (net.parse::<IpAddr>().ok()?, len.parse::<u32>().ok()?),
        None => match cidr.trim().parse::<IpAddr>().ok()? {
            net @ IpAddr::V4(_) => (net, 32),
            IpAddr::V6(_) => return None,
        },
    };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) if len <= 32 => {
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            Some(u32::from(n) & mask == u32::from(a) & mask)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if len <= 128 => {
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            Some(u128::from(n) & mask == u128::from(a) & mask)
        }
        (IpAddr::V4(_), IpAddr::V6(_)) | (IpAddr::V6(_), IpAddr::V4(_)) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn eval(op: &str, key: &str, values: &[&str], ctx: &[(&str, &[&str])]) -> (Tri, Trace) {
        let ctx: BTreeMap<String, Vec<String>> = ctx
            .iter()
            .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
            .collect();
        let (view, _) = ContextView::new(&ctx);
        let clause = ConditionClause {
            operator: op.into(),
            key: key.into(),
            values: values.iter().map(|s| s.to_string()).collect(),
        };
        let mut trace = Trace::default();
        (evaluate_condition(&[clause], &view, true, &mut trace), trace)
    }

    fn t(op: &str, values: &[&str], request: &[&str]) -> Tri {
        eval(op, "k", values, &[("K", request)]).0
    }

    #[test]
    fn operator_families() {
        use Tri::{False as F, True as T, Unknown as U};
        let table: &[(&str, &[&str], &[&str], Tri)] = &[
            ("StringEquals", &["a", "b"], &["b"], T),
            ("StringEquals", &["A"], &["a"], F),
            ("StringNotEquals", &["a", "b"], &["b"], F),
            ("StringNotEquals", &["a", "b"], &["c"], T),
            ("StringEqualsIgnoreCase", &["ABC"], &["abc"], T),
            ("StringNotEqualsIgnoreCase", &["ABC"], &["abc"], F),
            ("StringLike", &["a*/x?"], &["a/b/xy"], T),
            ("StringNotLike", &["a*"], &["ba"], T),
            ("NumericLessThanEquals", &["10"], &["10"], T),
            ("NumericLessThan", &["10"], &["10.0"], F),
            ("NumericGreaterThan", &["-1.5"], &["-1.25"], T),
            ("NumericEquals", &["007"], &["7.000"], T),
            ("NumericNotEquals", &["1"], &["2"], T),
            ("NumericEquals", &["1e3"], &["1000"], U),
            (
                "DateLessThan",
                &["2020-01-01T00:00:00Z"],
                &["2019-12-31T23:00:00-02:00"],
                F,
            ),
            ("DateGreaterThanEquals", &["1577836800"], &["2020-01-01T00:00Z"], T),
            ("DateEquals", &["2020-01-01"], &["2020-01-01T00:00:00Z"], U),
            ("Bool", &["true"], &["true"], T),
            ("Bool", &["true"], &["True"], U),
            ("BinaryEquals", &["QmluYXJ5"], &["QmluYXJ5"], T),
            ("BinaryEquals", &["QmluYXJ5"], &["QmluYXJ6"], F),
            ("IpAddress", &["203.0.113.0/24"], &["203.0.113.9"], T),
            ("IpAddress", &["203.0.113.7"], &["203.0.113.8"], F),
            ("NotIpAddress", &["2001:db8::/32", "10.0.0.0/8"], &["2001:db8::1"], F),
            ("IpAddress", &["2001:db8::1"], &["2001:db8::1"], U),
            (
                "ArnLike",
                &["arn:aws:someservice:*:111122223333:finance/*"],
                &["arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"],
                F,
            ),
            (
                "StringLike",
                &["arn:aws:someservice:*:111122223333:finance/*"],
                &["arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"],
                T,
            ),
            ("ArnEquals", &["arn:aws:s3:::b/*"], &["arn:aws:s3:::b/k:1"], T),
            (
                "ArnNotLike",
                &["arn:aws:iam::*:role/Admin"],
                &["arn:aws:iam::1:role/App"],
                T,
            ),
            ("StringEqualsIfExists", &["a"], &["b"], F),
            ("ForAllValues:StringEquals", &["a", "b"], &["a", "b"], T),
            ("ForAllValues:StringEquals", &["a"], &["a", "c"], F),
            ("ForAllValues:StringEquals", &["a"], &[], T),
            ("ForAnyValue:StringEquals", &["a"], &["c", "a"], T),
            ("ForAnyValue:StringEquals", &["a"], &[], F),
            ("ForAllValues:StringNotLike", &["key1*"], &["key2:audit"], T),
            ("ForAllValues:StringNotLike", &["key1*"], &["key1:hr", "key2"], F),
            ("StringEquals", &["a"], &["a", "b"], U),
            ("StringEquals", &["a"], &[], U),
            ("StringEqualz", &["a"], &["a"], U),
            ("NullIfExists", &["true"], &["a"], U),
        ];
        for (op, values, request, want) in table {
            assert_eq!(t(op, values, request), *want, "{op} {values:?} vs {request:?}");
        }
    }

    #[test]
    fn absent_keys() {
        let absent = |op: &str| eval(op, "aws:Missing", &["x"], &[]).0;
        for op in [
            "StringNotEquals",
            "StringNotLike",
            "ArnNotLike",
            "NotIpAddress",
            "StringEqualsIfExists",
            "ForAllValues:StringEquals",
        ] {
            assert_eq!(absent(op), Tri::True, "{op}");
        }
        for op in [
            "StringEquals",
            "StringLike",
            "NumericEquals",
            "Bool",
            "ForAnyValue:StringEquals",
            "ForAnyValue:StringNotEquals",
        ] {
            assert_eq!(absent(op), Tri::False, "{op}");
        }
        let (r, trace) = eval("Null", "aws:TokenIssueTime", &["true"], &[]);
        assert_eq!(r, Tri::True);
        assert_eq!(trace.missing_keys(), vec!["aws:TokenIssueTime"]);
        assert_eq!(eval("Null", "k", &["false"], &[("k", &["v"])]).0, Tri::True);
        assert_eq!(eval("Null", "k", &["true"], &[("k", &["v"])]).0, Tri::False);
    }

    #[test]
    fn keys_case_insensitive_values_variables() {
        assert_eq!(
            eval("StringEquals", "AWS:SourceIp", &["x"], &[("aws:sourceip", &["x"])]).0,
            Tri::True
        );
        let ctx: &[(&str, &[&str])] = &[("s3:ExistingObjectTag/Team", &["red"])];
        let (r, trace) = eval(
            "StringEquals",
            "s3:ExistingObjectTag/Team",
            &["${aws:PrincipalTag/Team}"],
            ctx,
        );
        assert_eq!(r, Tri::False);
        assert_eq!(trace.missing_keys(), vec!["aws:PrincipalTag/Team"]);
        let (r, _) = eval(
            "StringNotEquals",
            "s3:ExistingObjectTag/Team",
            &["${aws:PrincipalTag/Team}"],
            ctx,
        );
        assert_eq!(r, Tri::True);
        let both: &[(&str, &[&str])] = &[
            ("s3:ExistingObjectTag/Team", &["red"]),
            ("aws:PrincipalTag/team", &["red"]),
        ];
        assert_eq!(
            eval(
                "StringEquals",
                "s3:ExistingObjectTag/Team",
                &["${aws:PrincipalTag/Team}"],
                both
            )
            .0,
            Tri::True
        );
    }
}
