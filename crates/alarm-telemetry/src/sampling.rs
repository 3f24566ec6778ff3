//! Which traces are recorded: the `OTEL_TRACES_SAMPLER` samplers, decided once per trace before its first span is made.
// Only the pipeline (feature `export`) makes a sampler; without it every
// decision is "no trace" and this module is reached by its tests alone.
#![cfg_attr(not(feature = "export"), allow(dead_code))]

use opentelemetry::trace::{SpanContext, TraceId};

/// A trace sampler as `OTEL_TRACES_SAMPLER` names them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Sampling {
    /// Every trace.
    AlwaysOn,
    /// No trace.
    AlwaysOff,
    /// The share of traces whose id falls under the ratio, so that every
    /// process deciding on the same trace id decides alike.
    TraceIdRatio(f64),
    /// A parent's decision when there is a parent, else the root sampler's.
    ParentBased(Box<Sampling>),
}

/// The share of root traces kept when `OTEL_TRACES_SAMPLER` is unset.
const DEFAULT_RATIO: f64 = 0.1;

impl Sampling {
    /// The sampler the two variables name. Unset, one root trace in ten is
    /// kept and parents are followed (`parentbased_traceidratio` 0.1), not
    /// the specification's `parentbased_always_on`: recording every fire
    /// burst cost the worker a third more CPU.
    ///
    /// # Errors
    /// An unknown sampler, one not built here, or a ratio that is not a
    /// number in [0, 1]; the message names the variable.
    pub(crate) fn from_values(sampler: Option<&str>, arg: Option<&str>) -> Result<Self, String> {
        let ratio = || -> Result<f64, String> {
            let Some(arg) = arg.map(str::trim).filter(|a| !a.is_empty()) else {
                return Ok(1.0);
            };
            arg.parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    format!("OTEL_TRACES_SAMPLER_ARG: `{arg}` is not a ratio between 0 and 1")
                })
        };
        let Some(name) = sampler.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Self::ParentBased(Box::new(Self::TraceIdRatio(
                DEFAULT_RATIO,
            ))));
        };
        let parent_based = |root| Self::ParentBased(Box::new(root));
        Ok(match name {
            "always_on" => Self::AlwaysOn,
            "always_off" => Self::AlwaysOff,
            "traceidratio" => Self::TraceIdRatio(ratio()?),
            "parentbased_always_on" => parent_based(Self::AlwaysOn),
            "parentbased_always_off" => parent_based(Self::AlwaysOff),
            "parentbased_traceidratio" => parent_based(Self::TraceIdRatio(ratio()?)),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER: `{other}` is not a sampler built here (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)"
                ));
            }
        })
    }

    /// Whether the trace `trace` is recorded, `parent` being the span it
    /// continues (from a client or a stored row), if any.
    pub(crate) fn keeps(&self, parent: Option<&SpanContext>, trace: TraceId) -> bool {
        match self {
            Self::AlwaysOn => true,
            Self::AlwaysOff => false,
            Self::TraceIdRatio(ratio) => under_ratio(*ratio, trace),
            Self::ParentBased(root) => match parent {
                Some(p) => p.is_sampled(),
                None => root.keeps(None, trace),
            },
        }
    }
}

/// The OpenTelemetry SDK's trace-id ratio test (the lower 63 bits of the
/// id against the ratio), so a collector or another process deciding on the
/// same id agrees.
fn under_ratio(ratio: f64, trace: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let bytes = trace.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) >> 1) < bound
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceState};

    fn parent(sampled: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(7),
            SpanId::from(9),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            true,
            TraceState::default(),
        )
    }

    #[test]
    fn the_variables_name_the_samplers() {
        let read = |s: Option<&str>, a: Option<&str>| Sampling::from_values(s, a);
        assert_eq!(
            read(None, None),
            Ok(Sampling::ParentBased(Box::new(Sampling::TraceIdRatio(0.1))))
        );
        assert_eq!(read(Some("always_on"), None), Ok(Sampling::AlwaysOn));
        assert_eq!(
            read(Some("traceidratio"), Some("0.25")),
            Ok(Sampling::TraceIdRatio(0.25))
        );
        assert_eq!(
            read(Some("parentbased_traceidratio"), None),
            Ok(Sampling::ParentBased(Box::new(Sampling::TraceIdRatio(1.0))))
        );
        assert_eq!(
            read(Some("parentbased_always_off"), None),
            Ok(Sampling::ParentBased(Box::new(Sampling::AlwaysOff)))
        );
        for (s, a) in [
            ("jaeger_remote", None),
            ("xray", None),
            ("sometimes", None),
            ("traceidratio", Some("1.5")),
            ("traceidratio", Some("half")),
        ] {
            let e = read(Some(s), a).expect_err(s);
            assert!(e.starts_with("OTEL_TRACES_SAMPLER"), "{e}");
        }
    }

    #[test]
    fn parents_are_followed_and_ratios_split_by_trace_id() {
        let based = Sampling::ParentBased(Box::new(Sampling::AlwaysOff));
        assert!(based.keeps(Some(&parent(true)), TraceId::from(7)));
        assert!(
            !Sampling::ParentBased(Box::new(Sampling::AlwaysOn))
                .keeps(Some(&parent(false)), TraceId::from(7))
        );
        assert!(!based.keeps(None, TraceId::from(7)));
        // Not parent-based: the parent's flag is not asked.
        assert!(Sampling::AlwaysOn.keeps(Some(&parent(false)), TraceId::from(7)));
        // A quarter: the lower half of the id space's lower bits, halved.
        let quarter = Sampling::TraceIdRatio(0.25);
        assert!(quarter.keeps(None, TraceId::from((1u128 << 61) - 1)));
        assert!(!quarter.keeps(None, TraceId::from(1u128 << 62)));
        // The high half of the id does not count.
        assert!(quarter.keeps(None, TraceId::from(u128::MAX << 64)));
        let kept = (0..10_000u128)
            .filter(|i| {
                quarter.keeps(
                    None,
                    TraceId::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)),
                )
            })
            .count();
        assert!((2_200..2_800).contains(&kept), "{kept}");
        assert!(!Sampling::TraceIdRatio(0.0).keeps(None, TraceId::from(1)));
    }
}
