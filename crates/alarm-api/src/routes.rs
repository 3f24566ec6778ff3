//! Route templates for metric labels: a request path mapped to the OpenAPI path it matched (`/api/v1/alarms/{id}`), so labels never carry ids or raw paths and their number is bounded by the spec.

/// The templates of the served spec, each split into segments (`None` for
/// a `{parameter}`).
pub(crate) struct RouteTemplates {
    templates: Vec<(String, Vec<Option<String>>)>,
}

impl RouteTemplates {
    /// The templates of the OpenAPI document `spec` (its `paths` keys).
    pub(crate) fn from_spec(spec: &str) -> Self {
        let paths: Vec<String> = serde_json::from_str::<serde_json::Value>(spec)
            .ok()
            .and_then(|doc| {
                doc.get("paths")
                    .and_then(|p| p.as_object())
                    .map(|p| p.keys().cloned().collect())
            })
            .unwrap_or_default();
        let templates = paths
            .into_iter()
            .map(|path| {
                let segments = path
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect();
                (path, segments)
            })
            .collect();
        Self { templates }
    }

    /// The label of a request for `path`: its template, `/docs` for the
    /// documentation pages, else `other` (unknown paths, 404s).
    pub(crate) fn label(&self, path: &str) -> &str {
        let parts: Vec<&str> = path.split('/').collect();
        let exact = self.templates.iter().find(|(_, segments)| {
            segments.len() == parts.len()
                && segments
                    .iter()
                    .zip(&parts)
                    .all(|(s, p)| s.as_deref().is_none_or(|s| s == *p))
        });
        match exact {
            Some((template, _)) => template,
            None if path == "/openapi.json" => "/openapi.json",
            None if path == "/docs" || path.starts_with("/docs/") => "/docs",
            None => "other",
        }
    }
}

/// The class of an HTTP status for labels: `2xx`, `4xx`, ….
pub(crate) fn status_class(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_templates_and_nothing_else_leaks() {
        let routes = RouteTemplates::from_spec(&crate::openapi_json());
        for (path, label) in [
            ("/api/v1/alarms", "/api/v1/alarms"),
            (
                "/api/v1/alarms/0190e0a4-0000-7000-8000-000000000001",
                "/api/v1/alarms/{id}",
            ),
            (
                "/api/v1/alarms/0190e0a4-0000-7000-8000-000000000001/snooze",
                "/api/v1/alarms/{id}/snooze",
            ),
            ("/api/v1/auth/verify", "/api/v1/auth/verify"),
            ("/health/ready", "/health/ready"),
            ("/docs/", "/docs"),
            ("/openapi.json", "/openapi.json"),
            ("/api/v1/alarms/x/y/z/w", "other"),
            ("/wp-admin.php", "other"),
        ] {
            assert_eq!(routes.label(path), label, "{path}");
        }
        assert_eq!(status_class(201), "2xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
