//! Fixture prompts: plain, with arguments, with an embedded resource, with an image.

use rmcp::{
    handler::server::wrapper::Parameters,
    model::{ContentBlock, PromptMessage, ResourceContents, Role},
    prompt, prompt_router,
};
use schemars::JsonSchema;
use serde::Deserialize;

use super::content::PNG;
use crate::conformance::Fixtures;

#[derive(Debug, Deserialize, JsonSchema)]
pub struct TwoArguments {
    /// First test argument.
    pub arg1: String,
    /// Second test argument.
    pub arg2: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmbedArguments {
    /// URI of the resource to embed.
    pub resource_uri: String,
}

#[prompt_router(router = "fixture_prompts_router", vis = "pub(crate)")]
impl Fixtures {
    /// A prompt without arguments.
    #[prompt(name = "test_simple_prompt")]
    async fn test_simple_prompt(&self) -> Vec<PromptMessage> {
        vec![PromptMessage::new_text(
            Role::User,
            "This is a simple prompt for testing.",
        )]
    }

    /// A prompt with two required arguments.
    #[prompt(name = "test_prompt_with_arguments")]
    async fn test_prompt_with_arguments(&self, Parameters(args): Parameters<TwoArguments>) -> Vec<PromptMessage> {
        let text = format!("Prompt with arguments: arg1='{}', arg2='{}'", args.arg1, args.arg2);
        vec![PromptMessage::new_text(Role::User, text)]
    }

    /// A prompt that embeds a resource.
    #[prompt(name = "test_prompt_with_embedded_resource")]
    async fn test_prompt_with_embedded_resource(
        &self,
        Parameters(args): Parameters<EmbedArguments>,
    ) -> Vec<PromptMessage> {
        let resource = ResourceContents::text("Embedded resource content for testing.", args.resource_uri)
            .with_mime_type("text/plain");
        vec![
            PromptMessage::new(Role::User, ContentBlock::resource(resource)),
            PromptMessage::new_text(Role::User, "Please process the embedded resource above."),
        ]
    }

    /// A prompt with an image.
    #[prompt(name = "test_prompt_with_image")]
    async fn test_prompt_with_image(&self) -> Vec<PromptMessage> {
        vec![
            PromptMessage::new(Role::User, ContentBlock::image(PNG, "image/png")),
            PromptMessage::new_text(Role::User, "Please analyze the image above."),
        ]
    }
}
