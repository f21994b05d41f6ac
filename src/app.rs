//! The app: what this server offers. Its tools (`src/tools/`), prompts (`src/prompts.rs`) and
//! resources (`src/resources.rs`) are listed here, with the instructions the model reads; the
//! kit (everything else in `src/`) serves it.

use rmcp::{
    ErrorData,
    handler::server::router::{prompt::PromptRouter, tool::ToolRouter},
    model::{ReadResourceResult, Resource, ResourceTemplate},
};

use mcp_server_kit::{Kit, McpApp, guard::ToolPolicy, upstream::Upstream};

use crate::settings::Settings;
// weather-example:begin
use crate::weather::OpenMeteo;
// weather-example:end

/// The app's state, shared by every call: the clients its tools call through.
#[derive(Clone)]
pub struct App {
    /// The client tools call upstream APIs through (pooled, retrying, SSRF-guarded).
    #[allow(dead_code, reason = "unread until a tool calls an upstream API through it")]
    pub(crate) upstream: Upstream,
    // weather-example:begin
    pub(crate) weather: OpenMeteo,
    // weather-example:end
}

impl McpApp for App {
    type Settings = Settings;

    const NAME: &'static str = env!("CARGO_PKG_NAME");
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = env!("CARGO_PKG_DESCRIPTION");

    /// What the model reads about the server before it calls anything: what each tool,
    /// resource and prompt is for. Add a line for each one you add.
    #[allow(clippy::useless_concat, reason = "a project may start with one line")]
    const INSTRUCTIONS: &'static str = concat!(
        // weather-example:begin
        "Weather tools. get_forecast(city, days) returns a daily forecast (°C, mm, conditions) for \
         up to 16 days; get_forecasts(cities, days) does the same for up to 20 cities at once. The \
         weather://codes resource explains the weather codes in forecasts. The \
         plan_outdoor_activity prompt plans an activity around the forecast. ",
        // weather-example:end
        "convert_temperature converts a temperature between celsius, fahrenheit and kelvin.",
    );

    #[allow(unused_variables, reason = "an app without settings of its own reads none")]
    fn new(settings: &Settings, kit: &Kit) -> Result<Self, String> {
        Ok(Self {
            upstream: kit.upstream.clone(),
            // weather-example:begin
            weather: OpenMeteo::new(kit.upstream.clone(), &settings.weather),
            // weather-example:end
        })
    }

    fn tools() -> Vec<(ToolRouter<Self>, ToolPolicy)> {
        crate::tools::all()
    }

    fn prompts() -> PromptRouter<Self> {
        crate::prompts::router()
    }

    #[allow(unused_variables, reason = "an app without settings of its own reads none")]
    fn upstream_hosts(settings: &Settings) -> Vec<url::Host> {
        #[allow(unused_mut, reason = "the APIs below extend it")]
        let mut hosts = Vec::new();
        // weather-example:begin
        hosts.extend(settings.weather.hosts());
        // weather-example:end
        hosts
    }

    fn resources(&self) -> Vec<Resource> {
        crate::resources::list()
    }

    fn resource_templates(&self) -> Vec<ResourceTemplate> {
        crate::resources::templates()
    }

    fn read_resource(&self, uri: &str) -> Option<Result<ReadResourceResult, ErrorData>> {
        crate::resources::read(uri)
    }
}
