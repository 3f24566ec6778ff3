//! The OTLP span pipeline (feature `export`), built from the standard `OTEL_*` variables.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// The share of root traces kept when `OTEL_TRACES_SAMPLER` is unset.
const DEFAULT_RATIO: f64 = 0.1;

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
        let mut builder = SdkTracerProvider::builder();
        // The SDK's own default samples every root; measured with `cargo
        // xtask bench worker` that cost a fire burst 8.9 % of its rate, so
        // unless OTEL_TRACES_SAMPLER says otherwise one root in ten is kept
        // (a sampled parent, from a client or a stored row, is followed).
        if std::env::var("OTEL_TRACES_SAMPLER").is_err() {
            builder = builder.with_sampler(Sampler::ParentBased(Box::new(
                Sampler::TraceIdRatioBased(DEFAULT_RATIO),
            )));
        }
        let provider = builder
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Some(Self { provider }))
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("smart-alarm"))
    }

    /// Exports the queued spans and stops the pipeline.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("tracing: the last spans were not exported: {e}");
        }
    }
}
