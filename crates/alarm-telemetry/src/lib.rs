//! Distributed tracing: the OTLP span pipeline, switched on by the standard `OTEL_*` variables, and W3C `traceparent` propagation.
//!
//! The pipeline is off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and neither
//! `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise).
//! `OTEL_TRACES_SAMPLER`/`_ARG` name the sampler as the specification
//! does (unset: `parentbased_traceidratio` 0.1, not the specification's
//! `parentbased_always_on`: recording every fire burst cost the worker a
//! third more CPU; an unknown sampler or a bad ratio stops the start). The
//! rest is the OpenTelemetry SDK's own reading of `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`/`_TIMEOUT`/
//! `_COMPRESSION` and `OTEL_BSP_*`. The protocol is HTTP/protobuf
//! (`/v1/traces`); gRPC is not built in.
//!
//! Which traces are recorded is decided once, at a trace's entry into the
//! process (a request, a stored row, an engine batch), before its first span
//! is made ([`decide`], [`span!`]): an unrecorded trace's spans are then
//! invisible to the OpenTelemetry layer and cost what a disabled span costs,
//! while its context (trace id, flags `00`) still travels through stored
//! rows and outgoing requests. Measured with `cargo xtask bench api --
//! --telemetry`: a span the layer sees costs each poll of its future, whether
//! or not its trace is exported.

use std::cell::Cell;
use std::sync::OnceLock;

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[cfg(feature = "export")]
mod export;
mod sampling;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "export")]
pub use export::Tracing;

/// The length of a version-00 `traceparent`: a stored value longer than
/// this is not one.
pub const TRACEPARENT_LEN: usize = 55;

/// The sampler of the running pipeline; unset, no trace is made.
static SAMPLING: OnceLock<sampling::Sampling> = OnceLock::new();

thread_local! {
    /// The trace id drawn for a recorded root while its OpenTelemetry span
    /// starts: the pipeline's id generator takes it, so the exported trace
    /// has the id its sampling decision was made on.
    static DRAWN_TRACE: Cell<Option<TraceId>> = const { Cell::new(None) };
}

tokio::task_local! {
    /// The context of the unrecorded trace a task works in (see
    /// [`Decision::scope`]).
    static UNRECORDED: Option<(TraceId, SpanId)>;
}

/// Whether and how a trace is recorded, decided at its entry into the
/// process. Make the entry span with [`span!`] and run its work in
/// [`Decision::scope`].
#[derive(Clone, Debug)]
pub struct Decision(Kind);

#[derive(Clone, Debug)]
enum Kind {
    /// No pipeline: no span has a trace, nothing is stored or sent.
    Off,
    /// Exported: the entry span continues `parent`, or is a root of `trace`.
    Recorded {
        parent: Option<SpanContext>,
        trace: TraceId,
    },
    /// Not exported, yet its context travels on (flags `00`).
    Unrecorded { trace: TraceId, span: SpanId },
}

/// Decides the trace that continues `traceparent` (a client's header, a
/// stored row), or a new root trace when it is `None` or not a valid one.
pub fn decide(traceparent: Option<&str>) -> Decision {
    let Some(sampling) = SAMPLING.get() else {
        return Decision(Kind::Off);
    };
    let parent = traceparent.and_then(parse);
    let trace = parent
        .as_ref()
        .map_or_else(|| TraceId::from(random_nonzero()), SpanContext::trace_id);
    Decision(if sampling.keeps(parent.as_ref(), trace) {
        Kind::Recorded { parent, trace }
    } else {
        Kind::Unrecorded {
            trace,
            span: SpanId::from(random_nonzero() as u64 | 1),
        }
    })
}

/// [`decide`] on a request's `traceparent` header (`tracestate` is not
/// carried on).
pub fn decide_for(headers: &http::HeaderMap) -> Decision {
    decide(headers.get("traceparent").and_then(|v| v.to_str().ok()))
}

/// A random non-zero id (trace ids need no secrecy, only spread).
fn random_nonzero() -> u128 {
    fastrand::u128(1..)
}

impl Decision {
    /// Whether the trace is exported.
    pub fn recorded(&self) -> bool {
        matches!(self.0, Kind::Recorded { .. })
    }

    /// Sets up the entry span [`span!`] made: a recorded one continues the
    /// parent and starts; either kind records its trace and span ids in the
    /// span's `trace_id` and `span_id` fields (when it declares them), so
    /// JSON log lines written inside it carry them.
    #[doc(hidden)]
    pub fn apply(&self, span: &Span) {
        match &self.0 {
            Kind::Off => {}
            Kind::Recorded { parent, trace } => {
                if let Some(parent) = parent {
                    // Fails only when the span is disabled: it then has no
                    // trace at all.
                    let _ = span.set_parent(
                        opentelemetry::Context::new().with_remote_span_context(parent.clone()),
                    );
                }
                DRAWN_TRACE.set(parent.is_none().then_some(*trace));
                stamp(span);
                DRAWN_TRACE.set(None);
            }
            Kind::Unrecorded { trace, span: id } => {
                span.record("trace_id", tracing::field::display(trace));
                span.record("span_id", tracing::field::display(id));
            }
        }
    }

    /// Runs `work` in this trace: in an unrecorded one, the
    /// [`current_traceparent`] of its code is the decision's context.
    pub fn scope<F: std::future::Future>(
        &self,
        work: F,
    ) -> impl std::future::Future<Output = F::Output> {
        let unrecorded = match self.0 {
            Kind::Unrecorded { trace, span } => Some((trace, span)),
            _ => None,
        };
        UNRECORDED.scope(unrecorded, work)
    }
}

/// `work` in the caller's trace, for a task spawned from it: the current
/// span (a recorded trace's) and the unrecorded trace's context, which a
/// task-local would not carry into a new task.
pub fn in_current_trace<F: std::future::Future>(
    work: F,
) -> impl std::future::Future<Output = F::Output> {
    use tracing::Instrument as _;
    let unrecorded = UNRECORDED.try_with(|c| *c).ok().flatten();
    UNRECORDED.scope(unrecorded, work.in_current_span())
}

/// Makes the entry span of a trace [`decide`]d on: the `tracing` span
/// `info_span!(name, fields…)`, seen by the OpenTelemetry layer only when
/// the trace is recorded (an unrecorded one has the target
/// `<module>::untraced`, which the layer ignores), set up by
/// [`Decision::apply`].
///
/// Every root span of the apps is made this way: the pipeline's sampler
/// records every root it sees, taking them as decided. Spans below it are
/// made only when [`in_sampled_trace`] says so.
#[macro_export]
macro_rules! span {
    ($decision:expr, $name:expr $(, $($fields:tt)*)?) => {{
        let decision: &$crate::Decision = &$decision;
        let span = if decision.recorded() {
            ::tracing::info_span!($name $(, $($fields)*)?)
        } else {
            ::tracing::info_span!(target: concat!(module_path!(), "::untraced"), $name $(, $($fields)*)?)
        };
        decision.apply(&span);
        span
    }};
}

/// The W3C `traceparent` of `span` (`00-<trace>-<span>-<flags>`), `None`
/// when it belongs to no recorded trace (no pipeline, the span is disabled
/// or its trace unrecorded).
pub fn traceparent(span: &Span) -> Option<String> {
    let cx = span.context();
    let context = cx.span().span_context().clone();
    context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    })
}

/// The `traceparent` of the trace the caller works in: its span's in a
/// recorded trace, the decision's context (flags `00`) in an unrecorded
/// one, `None` outside any trace.
pub fn current_traceparent() -> Option<String> {
    traceparent(&Span::current()).or_else(|| {
        UNRECORDED
            .try_with(|c| c.map(|(trace, span)| format!("00-{trace}-{span}-00")))
            .ok()
            .flatten()
    })
}

/// Whether `span` belongs to a trace that is recorded: the pipeline is on
/// and the sampler kept the trace. Spans made below an unrecorded one are
/// never exported, so hot paths ask this before they make one: a span
/// costs its builder, its attributes and each poll of its future.
pub fn sampled(span: &Span) -> bool {
    span.context().span().span_context().is_sampled()
}

/// Whether the span the caller is in belongs to a recorded trace (see
/// [`sampled`]).
pub fn in_sampled_trace() -> bool {
    sampled(&Span::current())
}

/// A W3C `traceparent` (version 00, or a later version read as 00 as the
/// recommendation asks), `None` when it is not one or names no trace.
pub fn parse(traceparent: &str) -> Option<SpanContext> {
    let value = traceparent.trim();
    let mut parts = value.split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    // Version 00 has exactly four parts; a later one may add more.
    if version == "00" && parts.next().is_some() {
        return None;
    }
    let context = SpanContext::new(
        TraceId::from_hex(trace).ok()?,
        SpanId::from_hex(span).ok()?,
        TraceFlags::new(u8::from_str_radix(flags, 16).ok()? & TraceFlags::SAMPLED.to_u8()),
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// Records the span's trace and span ids in its `trace_id` and `span_id`
/// fields (when it declares them); starts its OpenTelemetry span.
fn stamp(span: &Span) {
    let cx = span.context();
    let context = cx.span().span_context().clone();
    if context.is_valid() {
        span.record("trace_id", tracing::field::display(context.trace_id()));
        span.record("span_id", tracing::field::display(context.span_id()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_read_as_the_recommendation_says() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let read = parse(good).expect("valid");
        assert_eq!(
            read.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(read.span_id().to_string(), "00f067aa0ba902b7");
        assert!(read.is_sampled() && read.is_remote());
        assert_eq!(good.len(), TRACEPARENT_LEN);
        // A later version may carry more parts; flags beyond "sampled" are dropped.
        let later =
            parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-x").expect("v01");
        assert_eq!(later.trace_flags(), TraceFlags::SAMPLED);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn without_a_pipeline_no_span_has_a_trace() {
        let decision = decide(Some(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ));
        assert!(!decision.recorded());
        let span = crate::span!(decision, "outside");
        assert_eq!(traceparent(&span), None);
        assert_eq!(span.in_scope(current_traceparent), None);
        assert!(!sampled(&span));
        assert!(!span.in_scope(in_sampled_trace));
    }
}
