//! The one place every request passes through on every transport: who calls, cancellation
//! (by the client, or when the drain period runs out), a panic turned into an error, and the
//! request's log line, span and metrics.

use std::{future::Future, sync::LazyLock, time::Instant};

use rmcp::{
    ErrorData, RoleServer,
    model::{ErrorCode, ProtocolVersion, RequestId},
    service::RequestContext,
};
use tokio_util::sync::CancellationToken;

use super::{McpServer, shutting_down};
use crate::{auth::Principal, guard::Decision, mcp_app::McpApp, telemetry::clip};

/// Who calls when the HTTP edge named no one (it always does; a safe default all the same).
static UNKNOWN_CALLER: LazyLock<Principal> = LazyLock::new(|| Principal::anonymous("unknown"));

/// The parts of a request its log line and its cancellation need.
pub(super) struct Seen {
    cancelled: CancellationToken,
    id: RequestId,
    protocol: Option<ProtocolVersion>,
    transport: &'static str,
    subject: String,
    /// The trace context the request's span continues, and its session (`otel` builds only).
    #[cfg(feature = "otel")]
    parent: Option<opentelemetry::Context>,
    #[cfg(feature = "otel")]
    session: Option<String>,
}

impl<A: McpApp> McpServer<A> {
    /// The caller: put in the request by the HTTP edge, or the stdio principal.
    pub(super) fn principal<'a>(&'a self, context: &'a RequestContext<RoleServer>) -> &'a Principal {
        match context.extensions.get::<axum::http::request::Parts>() {
            Some(parts) => parts.extensions.get::<Principal>().unwrap_or(&UNKNOWN_CALLER),
            None => &self.stdio_principal,
        }
    }

    /// What [`Self::observe`] needs of a request, taken before the handler consumes its context
    /// (a clone of the context would copy the HTTP request's headers too).
    pub(super) fn seen(&self, context: &RequestContext<RoleServer>) -> Seen {
        let http = context.extensions.get::<axum::http::request::Parts>();
        Seen {
            cancelled: context.ct.clone(),
            id: context.id.clone(),
            protocol: context.protocol_version(),
            transport: if http.is_some() { "http" } else { "stdio" },
            subject: self.principal(context).subject.clone(),
            #[cfg(feature = "otel")]
            parent: crate::otel::parent(&context.meta.0.0, http.map(|parts| &parts.headers)),
            #[cfg(feature = "otel")]
            session: http
                .and_then(|parts| parts.headers.get("mcp-session-id")?.to_str().ok())
                .map(str::to_owned),
        }
    }

    /// Runs one request: cancels it when the client cancels or the drain period runs out,
    /// and logs one line with its outcome and duration. (Counting requests in flight and
    /// refusing new ones while draining happens at the transport edges, which see the answer
    /// leave, not only the handler return.)
    ///
    /// Boxed: rmcp moves each request's future into a task of its own, and a handler's whole
    /// work inlined (the guard, a task's start, the tool) would make each move a large copy.
    pub(super) fn observe<'a, T: Send + 'a>(
        &'a self,
        method: &'static str,
        name: Option<&'a str>,
        seen: Seen,
        classify: impl FnOnce(&Result<T, ErrorData>) -> (Option<Decision>, &'static str) + Send + 'a,
        work: impl Future<Output = Result<T, ErrorData>> + Send + 'a,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<T, ErrorData>> + Send + 'a>> {
        Box::pin(self.observed(method, name, seen, classify, work))
    }

    async fn observed<T>(
        &self,
        method: &'static str,
        name: Option<&str>,
        seen: Seen,
        classify: impl FnOnce(&Result<T, ErrorData>) -> (Option<Decision>, &'static str),
        work: impl Future<Output = Result<T, ErrorData>>,
    ) -> Result<T, ErrorData> {
        let started = Instant::now();
        let request_id = seen.id.to_string();
        // The request's span, when traces are exported; its work runs in the span's context.
        #[cfg(feature = "otel")]
        let (span, work) = match crate::otel::request_span(crate::otel::Request {
            method,
            target: name,
            id: &request_id,
            protocol: seen.protocol.as_ref().map(|v| v.as_str()),
            transport: seen.transport,
            session: seen.session.as_deref(),
            parent: seen.parent,
        }) {
            Some(span) => (
                Some(span.clone()),
                futures_util::future::Either::Left(opentelemetry::context::FutureExt::with_context(work, span)),
            ),
            None => (None, futures_util::future::Either::Right(work)),
        };
        // Reading or cancelling a task is instant and still served once the drain ran out.
        let abortable = !method.starts_with("tasks/");
        // A panic in the work (a fault in a tool or in the server) answers as an internal error,
        // rather than leaving the caller waiting for an answer that would never come.
        let work = futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(work));
        let ((decision, outcome), result) = tokio::select! {
            result = work => match result {
                Ok(result) => (classify(&result), result),
                Err(_) => ((None, "panicked"), Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "the server failed while handling this request (a fault in the server, logged); retrying may not help", None))),
            },
            _ = self.shutdown.aborted(), if abortable => ((None, "cancelled_by_shutdown"), Err(shutting_down("the server is shutting down and cancelled this request when its drain period ran out; retry it"))),
            _ = seen.cancelled.cancelled() => ((None, "cancelled"), Err(ErrorData::new(ErrorCode::INTERNAL_ERROR, "request cancelled by the client", None))),
        };
        let decision = decision.map(Decision::as_str);
        let elapsed = started.elapsed().as_secs_f64();
        let duration_ms = (elapsed * 1e6).round() / 1e3; // µs precision
        // What a client chose (names, ids, a token's subject) is logged clipped.
        let (subject, name) = (clip(&seen.subject), name.map(clip));
        let request_id = clip(&request_id);
        let protocol = seen.protocol.as_ref().map(|v| v.as_str());
        let transport = seen.transport;
        if let Some(metrics) = crate::metrics::get() {
            let error_type = match &result {
                // A tool's failure, a refusal, a timeout: all answered as `isError` results.
                Ok(_) if !matches!(outcome, "ok" | "task_started") => "tool_error",
                Ok(_) => "",
                Err(error) => crate::metrics::error_code(error.code.0),
            };
            metrics.operation(method, name.as_deref(), protocol, transport, error_type, elapsed);
            if let (Some(tool), Some(decision)) = (name.as_deref(), decision)
                && method == "tools/call"
            {
                metrics.guard_decision(tool, decision);
            }
        }
        #[cfg(feature = "otel")]
        let ids = span.map(|span| {
            crate::otel::finish(&span, decision, outcome, result.as_ref().err().map(|e| e.code.0));
            crate::otel::ids(&span)
        });
        #[cfg(feature = "otel")]
        let (trace_id, span_id) = ids.as_ref().map(|ids| (ids.trace(), ids.span())).unzip();
        #[cfg(not(feature = "otel"))]
        let (trace_id, span_id): (Option<&str>, Option<&str>) = (None, None);
        let log = || match &result {
            // Fields given as `&str`, not `%Display`: recorded as they are, with no string made.
            Ok(_) => tracing::info!(
                event = "request",
                method,
                name = name.as_deref(),
                request_id = request_id.as_ref(),
                protocol,
                transport,
                subject = subject.as_ref(),
                decision,
                duration_ms,
                outcome,
                trace_id,
                span_id,
                "handled {method}"
            ),
            Err(error) => tracing::warn!(
                event = "request",
                method,
                name = name.as_deref(),
                request_id = request_id.as_ref(),
                protocol,
                transport,
                subject = subject.as_ref(),
                decision,
                duration_ms,
                outcome,
                error_code = error.code.0,
                error = clip(&error.message).as_ref(),
                trace_id,
                span_id,
                "handled {method}"
            ),
        };
        // A refusal a client can repeat at will (a call the guard turned away, a request it got
        // wrong) is logged in full once a second per kind, the rest counted: a flood of them
        // cannot flood the log.
        let refused = match &result {
            Ok(_) => decision.filter(|d| *d != Decision::Allowed.as_str()),
            Err(error) => CLIENT_ERRORS
                .contains(&error.code.0)
                .then(|| crate::metrics::error_code(error.code.0)),
        };
        match refused {
            Some(kind) => crate::refusals::Refusals::server().record(kind, log),
            None => log(),
        }
        result
    }
}

/// JSON-RPC errors for what the client sent (invalid request or params, an unknown method,
/// resource or task, a capability it lacks), as opposed to the server's own trouble.
const CLIENT_ERRORS: [i32; 5] = [-32600, -32601, -32602, -32002, -32021];

/// The outcome of a request that is neither a tool call nor a refusal: ok or error.
pub(super) fn ok<T>(result: &Result<T, ErrorData>) -> (Option<Decision>, &'static str) {
    (None, if result.is_ok() { "ok" } else { "error" })
}
