//! The HTTP layer of the request path: how an HTTP request begins a [`Call`] and how
//! an HTTP response is an [`Answer`]. Everything else in the path is protocol-free.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request};
use axum::response::Response;

use crate::{Answer, Call, FrontDoor, Requested};

impl FrontDoor {
    /// Starts serving `operation` for an HTTP request: the client address (from
    /// axum's connection info) and the `Authorization` header are read now, before the
    /// door consumes the request.
    pub fn begin_http<B>(&self, operation: impl Into<Requested>, request: &Request<B>) -> Call<'_> {
        let source = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let authorization = request
            .headers()
            .get(axum::http::header::AUTHORIZATION)
            .cloned();
        self.begin(operation, source, authorization)
    }
}

impl Answer for Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }

    fn set_request_id(&mut self, name: &'static str, request_id: &str) {
        if let Ok(value) = HeaderValue::from_str(request_id) {
            self.headers_mut().insert(name, value);
        }
    }
}
