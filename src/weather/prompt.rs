//! `plan_outdoor_activity`: a prompt that has the model plan around the forecast.

use rmcp::{
    ErrorData,
    handler::server::wrapper::Parameters,
    model::{PromptMessage, Role},
    prompt, prompt_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use validator::Validate;

use mcp_server_kit::guard::check_rules;

use crate::{
    app::App,
    tools::{PLACE_NAME, PLACE_NAME_PATTERN},
};

/// A prompt's arguments are checked by its handler (no guard stands in front of prompts), by
/// the same rules as the tool it has the model call.
#[derive(Debug, Deserialize, JsonSchema, Validate)]
pub struct PlanOutdoorActivity {
    /// Where the activity takes place, e.g. "Lisbon".
    #[validate(length(min = 1, max = 100), regex(path = *PLACE_NAME))]
    // The schema takes the pattern's text: building the prompt list at start compiles no regex.
    #[schemars(length(min = 1, max = 100), regex(pattern = PLACE_NAME_PATTERN))]
    pub city: String,
    /// What the user wants to do, e.g. "a long bike ride".
    #[validate(length(min = 1, max = 200))]
    pub activity: String,
    /// When, in the user's words, e.g. "this weekend" (default: the next few days).
    #[validate(length(max = 100))]
    pub when: Option<String>,
}

#[prompt_router(router = "plan_router", vis = "pub(crate)")]
impl App {
    /// Plan an outdoor activity around the weather: fetches the forecast and picks the best day.
    #[prompt(name = "plan_outdoor_activity")]
    pub async fn plan_outdoor_activity(
        &self,
        Parameters(args): Parameters<PlanOutdoorActivity>,
    ) -> Result<Vec<PromptMessage>, ErrorData> {
        check_rules("prompt 'plan_outdoor_activity'", &args)?;
        let when = args.when.as_deref().unwrap_or("in the next few days");
        Ok(vec![PromptMessage::new_text(
            Role::User,
            format!(
                "I want to do {activity} in {city} {when}. Call get_forecast for {city} with enough \
                 days to cover that period, then recommend the best day and time of day, say what \
                 to bring for the conditions, and name a fallback day if the weather turns.",
                activity = args.activity.trim(),
                city = args.city.trim(),
            ),
        )])
    }
}
