//! What answers a request no route took: 405 with `Allow` when the path exists under other
//! methods, a redirect from `/docs` to the Swagger UI, and 404 otherwise.
//!
//! Routes are registered as one resource per method, so actix-web alone cannot tell a wrong
//! method from a wrong path. The paths and methods come from the OpenAPI document, which is
//! built from the same route table, so the two cannot disagree.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, ResponseError};

use crate::error::ApiError;

/// Each documented path as segments (`None` for a `{parameter}`), with its methods.
#[derive(Debug, Clone, Default)]
pub struct KnownPaths(Vec<(Vec<Option<String>>, Vec<&'static str>)>);

impl KnownPaths {
    pub fn from_document(api: &utoipa::openapi::OpenApi) -> KnownPaths {
        let paths = api
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .strip_prefix('/')
                    .unwrap_or(path)
                    .split('/')
                    .map(|s| (!s.starts_with('{')).then(|| s.to_owned()))
                    .collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                (segments, methods)
            })
            .collect();
        KnownPaths(paths)
    }

    /// The methods `path` answers to, if it is a known path. Where several templates match,
    /// the most specific wins: `/customers/search` is not `/customers/{id}`.
    pub fn methods(&self, path: &str) -> Option<Vec<&'static str>> {
        let parts: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        self.0
            .iter()
            .filter(|(segments, _)| {
                segments.len() == parts.len()
                    && segments.iter().zip(&parts).all(|(s, p)| match s {
                        Some(literal) => literal == p,
                        None => !p.is_empty(),
                    })
            })
            .max_by_key(|(segments, _)| segments.iter().filter(|s| s.is_some()).count())
            .map(|(_, methods)| methods.clone())
    }
}

pub async fn fallback(req: HttpRequest, known: actix_web::web::Data<KnownPaths>) -> HttpResponse {
    let path = req.path();
    if path == "/docs" {
        return HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, "/docs/"))
            .finish();
    }
    match known.methods(path) {
        // The method is known here, so the route refused the request's parameters.
        Some(methods) if methods.contains(&req.method().as_str()) => {
            ApiError::not_found("resource").error_response()
        }
        Some(methods) => {
            let allow = methods.join(", ");
            let mut response = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not allowed here; use {allow}", req.method()),
            )
            .error_response();
            if let Ok(value) = header::HeaderValue::from_str(&allow) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            response
        }
        None => ApiError::not_found("resource").error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_path_lists_its_methods() {
        let api = crate::openapi::document();
        let known = KnownPaths::from_document(&api);
        assert_eq!(known.methods("/api/v1/tags/12"), Some(vec!["GET", "PATCH"]));
        assert_eq!(known.methods("/api/v1/tags/12/x"), None);
        assert_eq!(known.methods("/api/v1/tags/"), None);
        assert_eq!(
            known.methods("/api/v1/customers/search"),
            Some(vec!["POST"])
        );
        assert_eq!(known.methods("/api/v1/nothing"), None);
    }
}
