//! The MCP server around an app: what it announces, and how requests reach the app's tool,
//! resource and prompt routers (and the kit's own tools). Every handler runs its work through
//! `observe` (observe.rs); the protocol's error answers are in errors.rs.

mod errors;
mod observe;

use errors::malformed_params;
pub use errors::{REFUSED_WHILE_DRAINING, SHUTTING_DOWN, explain_missing_method, missing_method, shutting_down};
use observe::ok;

use std::{borrow::Cow, sync::Arc, time::Instant};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{
        prompt::PromptContext,
        router::{prompt::PromptRouter, tool::ToolRouter},
        tool::ToolCallContext,
    },
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities, CompleteRequestParams,
        CompleteResult, CreateTaskResult, CustomRequest, CustomResult, DiscoverResult, ErrorCode,
        GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult, Implementation,
        InitializeRequestParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult,
        ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse,
        ServerCapabilities, ServerConfig, Tool, UpdateTaskParams,
    },
    service::RequestContext,
};

use crate::{
    auth::Principal,
    guard::{self, Decision, Guard, Overrides, TaskSupport},
    kit_tools::{Catalog, KitTools},
    mcp_app::{McpApp, PromptRetry, resource_not_found},
    shutdown::Shutdown,
    tasks::Tasks,
    telemetry::clip,
    upstream::Upstream,
};

/// The protocol revisions served: the stateless 2026-07-28 and the two handshake revisions.
pub const PROTOCOL_VERSIONS: &[ProtocolVersion] = &[
    ProtocolVersion::V_2026_07_28,
    ProtocolVersion::V_2025_11_25,
    ProtocolVersion::V_2025_06_18,
];

/// The server serving app `A`, one handle per session or request: the HTTP transport clones it
/// for each one, so it is a single `Arc` to what it holds.
pub struct McpServer<A: McpApp>(Arc<Parts<A>>);

impl<A: McpApp> Clone for McpServer<A> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

pub struct Parts<A: McpApp> {
    app: A,
    /// The app's tools, and the kit's own (`server_status`), which read the server through `kit`.
    tools: ToolRouter<A>,
    kit_tools: ToolRouter<KitTools>,
    kit: KitTools,
    prompts: PromptRouter<A>,
    guard: Arc<Guard>,
    shutdown: Shutdown,
    /// Tool calls running on as tasks, and their results.
    tasks: Tasks,
    /// Redis, when replicas share state (`MCP_REDIS_URL`).
    shared: Option<Arc<crate::state::Redis>>,
    /// Who calls over stdio: from the environment at startup (HTTP callers bring their own).
    stdio_principal: Principal,
}

impl<A: McpApp> std::ops::Deref for McpServer<A> {
    type Target = Parts<A>;

    fn deref(&self) -> &Parts<A> {
        &self.0
    }
}

/// What the server is built from, besides the app.
pub struct Machinery {
    pub upstream: Upstream,
    pub shutdown: Shutdown,
    pub tasks: Tasks,
    /// Redis, when replicas share state: rate limits are counted there (tasks and sessions take
    /// their stores from it when they are built).
    pub shared: Option<Arc<crate::state::Redis>>,
    /// Who calls over stdio.
    pub stdio_principal: Principal,
}

impl<A: McpApp> McpServer<A> {
    /// Builds the server; fails (as a config error) on an override for a tool that does not exist.
    pub fn new(app: A, machinery: Machinery, overrides: &Overrides) -> Result<Self, String> {
        let Machinery {
            upstream,
            shutdown,
            tasks,
            shared,
            stdio_principal,
        } = machinery;
        let Catalog {
            app: tools,
            kit: kit_tools,
            policies,
        } = crate::kit_tools::catalog::<A>();
        let guard = Arc::new(Guard::new(policies, overrides)?);
        if let Some(redis) = &shared {
            guard.limits().share(redis.clone());
        }
        let kit = KitTools {
            version: A::VERSION,
            started: Instant::now(),
            shutdown: shutdown.clone(),
            tasks: tasks.clone(),
            shared: shared.clone(),
            guard: guard.clone(),
            upstream,
        };
        Ok(Self(Arc::new(Parts {
            app,
            tools,
            kit_tools,
            kit,
            prompts: A::prompts(),
            guard,
            shutdown,
            tasks,
            shared,
            stdio_principal,
        })))
    }

    pub fn shared(&self) -> Option<&Arc<crate::state::Redis>> {
        self.shared.as_ref()
    }

    pub fn app(&self) -> &A {
        &self.app
    }

    /// Runs the tool a call names: the kit's own or the app's.
    async fn run_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if self.kit_tools.has_route(&request.name) {
            self.kit_tools
                .call(ToolCallContext::new(&self.kit, request, context))
                .await
        } else {
            self.tools.call(ToolCallContext::new(&self.app, request, context)).await
        }
    }

    fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.get(name).or_else(|| self.kit_tools.get(name))
    }

    pub fn guard(&self) -> &Arc<Guard> {
        &self.guard
    }
}

impl<A: McpApp> McpServer<A> {
    /// Answers with a task and runs the call in the background, under the tool's timeout, as
    /// the caller's task: its cancellation token is the task's, and the tool finds the task's
    /// handle in the request's extensions (through [`crate::progress::Progress`]).
    async fn start_task(
        &self,
        request: CallToolRequestParams,
        mut context: RequestContext<RoleServer>,
        timeout: std::time::Duration,
    ) -> Result<(Decision, &'static str, CallToolResponse), ErrorData> {
        let principal = self.principal(&context).clone();
        let server = self.clone();
        let tool = request.name.clone();
        let started = self
            .tasks
            .start(
                &principal.key,
                &principal.subject,
                &tool,
                timeout,
                move |handle, cancelled| {
                    context.ct = cancelled;
                    context.extensions.insert(handle);
                    async move { server.run_tool(request, context).await }
                },
            )
            .await?;
        Ok(match started {
            Ok(task) => (Decision::Allowed, "task_started", CreateTaskResult::new(task).into()),
            Err(refused) => (Decision::Allowed, "task_refused", refused.into()),
        })
    }
}

impl<A: McpApp> ServerHandler for McpServer<A> {
    fn get_info(&self) -> ServerConfig {
        let builder = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts();
        // The tasks extension, when some tool may run as a task.
        let mut capabilities = if self.guard.task_tools().next().is_some() {
            builder.enable_tasks().build()
        } else {
            builder.build()
        };
        self.app.capabilities(&mut capabilities);
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new(A::NAME, A::VERSION).with_description(A::DESCRIPTION))
            .with_instructions(A::INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.observe("initialize", None, self.seen(&context), ok, async {
            context.peer.set_peer_info(request.clone());
            self.negotiate_initialize(&request)
        })
        .await
    }

    async fn discover(&self, context: RequestContext<RoleServer>) -> Result<DiscoverResult, ErrorData> {
        self.observe("server/discover", None, self.seen(&context), ok, async {
            Ok(DiscoverResult::from_server_info(
                self.supported_protocol_versions().into_owned(),
                self.get_info(),
            ))
        })
        .await
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.observe("ping", None, self.seen(&context), ok, async { Ok(()) })
            .await
    }

    /// Completions, when the app offers them.
    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.observe("completion/complete", None, self.seen(&context), ok, async {
            self.app
                .complete(&request, &context)
                .unwrap_or_else(|| Err(missing_method("completion/complete")))
        })
        .await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let principal = self.principal(&context);
        self.observe("tools/list", None, self.seen(&context), ok, async {
            let visible = self
                .tools
                .list_all()
                .into_iter()
                .chain(self.kit_tools.list_all())
                .filter(|t| self.guard.policy_for(&t.name, principal).is_some());
            Ok(ListToolsResult::with_all_items(visible.collect()))
        })
        .await
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tool(name).cloned()
    }

    /// A request rmcp could not read: of a method not offered (method not found, its message
    /// made clear by the transports), or of one offered with params that do not fit it.
    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        let tasks = self.guard.task_tools().next().is_some();
        match malformed_params(&request.method, request.params, tasks) {
            // Logged and counted like any request of the method; an unknown method's name,
            // chosen by the client, is not made a label.
            Some((method, error)) => {
                self.observe(method, None, self.seen(&context), ok, async { Err(error) })
                    .await
            }
            None => Err(missing_method(&request.method)),
        }
    }

    async fn call_tool(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.clone();
        let tool = name.as_ref();
        let known = self.tool(&name).is_some();
        let classify = |result: &Result<(Decision, &'static str, CallToolResponse), ErrorData>| match result {
            Ok((decision, outcome, _)) => (Some(*decision), *outcome),
            // A task-only tool called by a client that takes no tasks, refused before the guard.
            Err(e) if e.code == ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY => {
                (Some(Decision::Denied), "missing_capability")
            }
            // A tool that exists fails with a JSON-RPC error only after the guard admitted the call.
            Err(_) => (known.then_some(Decision::Allowed), "error"),
        };
        let seen = self.seen(&context);
        let called = self.observe("tools/call", Some(tool), seen, classify, async move {
            if !known {
                return Err(ErrorData::invalid_params(
                    format!("unknown tool '{}'; tools/list shows the available tools", clip(tool)),
                    None,
                ));
            }
            #[cfg(feature = "bench")]
            if self.guard.is_off() {
                let response = self.run_tool(request, context).await?;
                return Ok((Decision::Allowed, "ok", response));
            }
            let principal = self.principal(&context);
            let client_takes_tasks = context.client_capabilities().is_some_and(|c| c.supports_tasks());
            if self.guard.task_support(tool) == Some(TaskSupport::Required) && !client_takes_tasks {
                return Err(ErrorData::missing_required_client_capability(
                    ClientCapabilities::builder().enable_tasks().build(),
                ));
            }
            let policy = match self.guard.admit(tool, principal, &mut request.arguments).await {
                Ok(policy) => policy,
                Err(refusal) => return Ok((refusal.decision, refusal.decision.as_str(), (*refusal.result).into())),
            };
            if policy.task != TaskSupport::Forbidden && client_takes_tasks && (policy.task_when)(&request) {
                return self.start_task(request, context, policy.timeout).await;
            }
            let call = self.run_tool(request, context);
            match tokio::time::timeout(policy.timeout, call).await {
                Ok(response) => {
                    let response = response?;
                    let failed = matches!(&response, CallToolResponse::Complete(r) if r.is_error == Some(true));
                    Ok((Decision::Allowed, if failed { "error" } else { "ok" }, response))
                }
                Err(_) => Ok((
                    Decision::Allowed,
                    "timed_out",
                    guard::timed_out(tool, policy.timeout).into(),
                )),
            }
        });
        called.await.map(|(_, _, response)| response)
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let owner = &self.principal(&context).key;
        self.observe("tasks/get", Some(&request.task_id), self.seen(&context), ok, async {
            self.tasks.get(&request.task_id, owner).await.map(GetTaskResult::new)
        })
        .await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let owner = &self.principal(&context).key;
        self.observe("tasks/cancel", Some(&request.task_id), self.seen(&context), ok, async {
            self.tasks.cancel(&request.task_id, owner).await
        })
        .await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let owner = &self.principal(&context).key;
        self.observe("tasks/update", Some(&request.task_id), self.seen(&context), ok, async {
            self.tasks
                .update(&request.task_id, owner, request.input_responses)
                .await
        })
        .await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.observe("resources/list", None, self.seen(&context), ok, async {
            Ok(ListResourcesResult::with_all_items(self.app.resources()))
        })
        .await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.observe("resources/templates/list", None, self.seen(&context), ok, async {
            Ok(ListResourceTemplatesResult::with_all_items(
                self.app.resource_templates(),
            ))
        })
        .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.observe("resources/read", Some(&request.uri), self.seen(&context), ok, async {
            match self.app.read_resource(&request.uri) {
                Some(result) => result.map(Into::into),
                None => Err(resource_not_found(
                    &request.uri,
                    "unknown resource; see resources/list and resources/templates/list",
                )),
            }
        })
        .await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.observe("prompts/list", None, self.seen(&context), ok, async {
            Ok(ListPromptsResult::with_all_items(self.prompts.list_all()))
        })
        .await
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let name = request.name.clone();
        // A retried request's answers, for a prompt that asked for input.
        let mut context = context;
        context.extensions.insert(PromptRetry {
            input_responses: request.input_responses.clone(),
        });
        self.observe("prompts/get", Some(&name), self.seen(&context), ok, async {
            if !self.prompts.has_route(&request.name) {
                // rmcp's own answer would repeat the name whole, however long.
                let available: Vec<_> = self.prompts.list_all().into_iter().map(|p| p.name).collect();
                return Err(ErrorData::invalid_params(
                    format!(
                        "prompt '{}' not found; prompts/list shows the available prompts",
                        clip(&request.name)
                    ),
                    Some(serde_json::json!({ "available_prompts": available })),
                ));
            }
            let prompt = PromptContext::new(&self.app, request.name, request.arguments, context.clone());
            self.prompts.get_prompt(prompt).await
        })
        .await
    }

    /// Client logging, when the app offers it.
    #[allow(
        deprecated,
        reason = "client logging is deprecated (SEP-2577); the suite still tests it"
    )]
    async fn set_level(
        &self,
        _request: rmcp::model::SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observe("logging/setLevel", None, self.seen(&context), ok, async {
            self.app
                .set_level()
                .unwrap_or_else(|| Err(missing_method("logging/setLevel")))
        })
        .await
    }

    /// Resource subscriptions, when the app offers them.
    async fn subscribe(
        &self,
        request: rmcp::model::SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observe(
            "resources/subscribe",
            Some(&request.uri),
            self.seen(&context),
            ok,
            async {
                self.app
                    .subscribe(&request.uri)
                    .unwrap_or_else(|| Err(missing_method("resources/subscribe")))
            },
        )
        .await
    }

    async fn unsubscribe(
        &self,
        request: rmcp::model::UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.observe(
            "resources/unsubscribe",
            Some(&request.uri),
            self.seen(&context),
            ok,
            async {
                self.app
                    .subscribe(&request.uri)
                    .unwrap_or_else(|| Err(missing_method("resources/unsubscribe")))
            },
        )
        .await
    }

    /// Resource subscriptions on 2026-07-28 (`subscriptions/listen`), when the app offers them.
    fn accepted_subscription_filter(
        &self,
        requested: &rmcp::model::SubscriptionFilter,
    ) -> Option<rmcp::model::SubscriptionFilter> {
        self.app.subscription_filter(requested)
    }
}
