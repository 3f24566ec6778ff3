//! The OTLP span pipeline (feature `export`), built from the standard `OTEL_*` variables.

use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, TraceContextExt, TraceId, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, SamplingDecision, SamplingResult, SdkTracerProvider, ShouldSample,
};
use tracing_subscriber::filter::FilterExt as _;

use crate::sampling::Sampling;

/// The span pipeline of one process; [`Tracing::shutdown`] exports what is
/// still queued.
#[derive(Debug)]
pub struct Tracing {
    provider: SdkTracerProvider,
}

/// Whether the environment asks for the OTLP pipeline.
fn wanted() -> bool {
    let value = |name: &str| std::env::var(name).map(|v| v.trim().to_ascii_lowercase());
    let set = |name: &str| value(name).is_ok_and(|v| !v.is_empty());
    let disabled = value("OTEL_SDK_DISABLED").is_ok_and(|v| v == "true");
    let no_exporter = value("OTEL_TRACES_EXPORTER").is_ok_and(|v| v == "none");
    !disabled
        && !no_exporter
        && (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

impl Tracing {
    /// The pipeline the environment asks for, `None` when it asks for none.
    /// `service` names the process unless `OTEL_SERVICE_NAME` does.
    ///
    /// # Errors
    /// The exporter cannot be built (e.g. an endpoint that is not a URL);
    /// the message names the setting.
    pub fn from_env(service: &'static str, version: &'static str) -> Result<Option<Self>, String> {
        if !wanted() {
            return Ok(None);
        }
        // reqwest is built without a default crypto provider: the
        // workspace's one is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| format!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
        let mut resource = opentelemetry_sdk::Resource::builder()
            .with_attribute(opentelemetry::KeyValue::new("service.version", version));
        if std::env::var("OTEL_SERVICE_NAME").is_err() {
            resource = resource.with_service_name(service);
        }
        let sampling = Sampling::from_values(
            std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref(),
            std::env::var("OTEL_TRACES_SAMPLER_ARG").ok().as_deref(),
        )?;
        // One pipeline per process; a second (tests that build two) keeps
        // the first one's sampler.
        let _ = crate::SAMPLING.set(sampling);
        let builder = SdkTracerProvider::builder()
            .with_sampler(Decided)
            .with_id_generator(Drawn);
        let provider = builder
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(Self { provider }))
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans: the
    /// INFO and higher spans of this workspace's crates (`alarm_*`) except
    /// those of unrecorded traces (see [`crate::span!`]), and the events
    /// written inside them. Other crates' spans would be roots nobody
    /// decided on.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        use tracing_subscriber::Layer as _;
        let ours = tracing_subscriber::filter::filter_fn(|meta| {
            meta.is_event()
                || (meta.target().starts_with("alarm_") && !meta.target().ends_with("::untraced"))
        });
        // Every request and fire of a recorded trace makes spans, so the
        // layer does no per-span work the exported spans do not need: no
        // OpenTelemetry context attached on each poll (nothing here reads
        // `Context::current`; parents come from the `tracing` span tree),
        // no busy/idle clocks read on each poll, no thread name copied, no
        // source location (the same few lines of middleware and store for
        // every span) encoded with each span and event.
        tracing_opentelemetry::layer()
            .with_context_activation(false)
            .with_location(false)
            .with_tracked_inactivity(false)
            .with_threads(false)
            .with_tracer(self.provider.tracer("smart-alarm"))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO.and(ours))
    }

    /// Exports the queued spans and stops the pipeline.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("tracing: the last spans were not exported: {e}");
        }
    }
}

/// The pipeline's sampler: traces were decided at their entry
/// ([`crate::decide`]), so a span the layer sees is recorded unless its
/// parent in this process is not (an entry span's parent is remote: the
/// decision made on it stands).
#[derive(Clone, Debug)]
struct Decided;

impl ShouldSample for Decided {
    fn should_sample(
        &self,
        parent: Option<&Context>,
        _trace: TraceId,
        _name: &str,
        _kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent: Option<SpanContext> = parent
            .map(|cx| cx.span().span_context().clone())
            .filter(SpanContext::is_valid);
        let decision = match &parent {
            Some(p) if !p.is_remote() && !p.is_sampled() => SamplingDecision::Drop,
            _ => SamplingDecision::RecordAndSample,
        };
        SamplingResult {
            decision,
            attributes: Vec::new(),
            trace_state: parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
        }
    }
}

/// The pipeline's ids: a root takes the trace id its decision was made on.
#[derive(Debug)]
struct Drawn;

impl IdGenerator for Drawn {
    fn new_trace_id(&self) -> TraceId {
        crate::DRAWN_TRACE
            .take()
            .unwrap_or_else(|| TraceId::from(crate::random_nonzero()))
    }

    fn new_span_id(&self) -> SpanId {
        SpanId::from(crate::random_nonzero() as u64 | 1)
    }
}
