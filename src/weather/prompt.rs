//! `plan_outdoor_activity`: a prompt that has the model plan around the forecast.

use rmcp::{
    handler::server::wrapper::Parameters,
    model::{PromptMessage, Role},
    prompt, prompt_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::server::McpServer;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PlanOutdoorActivity {
    /// Where the activity takes place, e.g. "Lisbon".
    pub city: String,
    /// What the user wants to do, e.g. "a long bike ride".
    pub activity: String,
    /// When, in the user's words, e.g. "this weekend" (default: the next few days).
    pub when: Option<String>,
}

#[prompt_router(router = "plan_router", vis = "pub(crate)")]
impl McpServer {
    /// Plan an outdoor activity around the weather: fetches the forecast and picks the best day.
    #[prompt(name = "plan_outdoor_activity")]
    pub async fn plan_outdoor_activity(&self, Parameters(args): Parameters<PlanOutdoorActivity>) -> Vec<PromptMessage> {
        let when = args.when.as_deref().unwrap_or("in the next few days");
        vec![PromptMessage::new_text(
            Role::User,
            format!(
                "I want to do {activity} in {city} {when}. Call get_forecast for {city} with enough \
                 days to cover that period, then recommend the best day and time of day, say what \
                 to bring for the conditions, and name a fallback day if the weather turns.",
                activity = args.activity.trim(),
                city = args.city.trim(),
            ),
        )]
    }
}
