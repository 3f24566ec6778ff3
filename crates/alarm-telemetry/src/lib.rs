//! Distributed tracing: the OTLP span pipeline, switched on by the standard `OTEL_*` variables, and W3C `traceparent` propagation.
//!
//! The pipeline is off unless `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and neither
//! `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none` says otherwise).
//! Everything else is the OpenTelemetry SDK's own reading of the standard
//! variables: `OTEL_TRACES_SAMPLER`/`_ARG` (unset: `parentbased_traceidratio` 0.1,
//! not the SDK's `parentbased_always_on`: sampling every fire burst cost the
//! worker 35 % more CPU),
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_HEADERS`/`_TIMEOUT`/`_COMPRESSION`, `OTEL_BSP_*`.
//! The protocol is HTTP/protobuf (`/v1/traces`); gRPC is not built in.
//!
//! Propagation works on `tracing` spans: [`accept`] continues a client's
//! trace from its request headers, [`traceparent`] names a span for a
//! stored row or an outgoing request, and [`continue_trace`] resumes a
//! stored one. Without the pipeline no span has a trace, so nothing is
//! stored or sent.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

#[cfg(feature = "export")]
mod export;
#[cfg(feature = "testing")]
pub mod testing;
#[cfg(feature = "export")]
pub use export::Tracing;

/// The length of a version-00 `traceparent`: a stored value longer than
/// this is not one.
pub const TRACEPARENT_LEN: usize = 55;

/// The W3C `traceparent` of `span` (`00-<trace>-<span>-<flags>`), `None`
/// when it belongs to no trace (no pipeline, or the span is disabled).
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

/// The `traceparent` of the span the caller is in.
pub fn current_traceparent() -> Option<String> {
    traceparent(&Span::current())
}

/// Whether `span` belongs to a trace that is recorded: the pipeline is on
/// and the sampler kept the trace. Spans made below an unrecorded one are
/// never exported (the samplers follow the parent), so hot paths ask this
/// before they make one: a span costs its builder, its attributes and a
/// sampling decision whether or not it is kept.
pub fn sampled(span: &Span) -> bool {
    span.context().span().span_context().is_sampled()
}

/// Whether the span the caller is in belongs to a recorded trace (see
/// [`sampled`]).
pub fn in_sampled_trace() -> bool {
    sampled(&Span::current())
}

/// Makes `span` (not yet entered) a child of the stored `traceparent`; an
/// unparsable value leaves it a root. Then [`stamp`]s it.
pub fn continue_trace(span: &Span, traceparent: &str) {
    adopt(span, parse(traceparent));
}

/// Makes `span` (not yet entered) a child of the trace a client's
/// `traceparent` header carries, when it carries a valid one (`tracestate`
/// is not carried on). Then [`stamp`]s it.
pub fn accept(span: &Span, headers: &http::HeaderMap) {
    let parent = headers
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse);
    adopt(span, parent);
}

fn adopt(span: &Span, parent: Option<SpanContext>) {
    if let Some(parent) = parent {
        // Fails only when the span is disabled or already started: it then
        // keeps the parent it has.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
    stamp(span);
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
/// fields (when it declares them), so JSON log lines written inside it
/// carry them.
pub fn stamp(span: &Span) {
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
        let span = tracing::info_span!("outside");
        continue_trace(
            &span,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        assert_eq!(traceparent(&span), None);
        assert!(!sampled(&span));
        assert!(!span.in_scope(in_sampled_trace));
    }
}
