//! Tools that answer with each kind of content, and one that always fails.

use rmcp::{
    model::{CallToolResult, ContentBlock, ResourceContents},
    tool, tool_router,
};

use super::policy;
use crate::{conformance::Fixtures, guard::ToolPolicy, mcp_app::NoArguments};

/// A 1×1 red PNG.
pub const PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A WAV file with one silent sample.
const WAV: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

pub fn policies() -> Vec<ToolPolicy> {
    [
        "test_simple_text",
        "test_image_content",
        "test_audio_content",
        "test_embedded_resource",
        "test_multiple_content_types",
        "test_error_handling",
    ]
    .into_iter()
    .map(policy::<NoArguments>)
    .collect()
}

#[tool_router(router = content_router, vis = "pub(crate)")]
impl Fixtures {
    /// Answers with one text block.
    #[tool]
    async fn test_simple_text(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::text("This is a simple text response for testing.")])
    }

    /// Answers with one PNG image.
    #[tool]
    async fn test_image_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::image(PNG, "image/png")])
    }

    /// Answers with one WAV clip.
    #[tool]
    async fn test_audio_content(&self) -> CallToolResult {
        CallToolResult::success(vec![ContentBlock::audio(WAV, "audio/wav")])
    }

    /// Answers with an embedded text resource.
    #[tool]
    async fn test_embedded_resource(&self) -> CallToolResult {
        let resource = ResourceContents::text("This is an embedded resource content.", "test://embedded-resource")
            .with_mime_type("text/plain");
        CallToolResult::success(vec![ContentBlock::resource(resource)])
    }

    /// Answers with text, an image and an embedded resource.
    #[tool]
    async fn test_multiple_content_types(&self) -> CallToolResult {
        let resource = ResourceContents::text(r#"{"test":"data","value":123}"#, "test://mixed-content-resource")
            .with_mime_type("application/json");
        CallToolResult::success(vec![
            ContentBlock::text("Multiple content types test:"),
            ContentBlock::image(PNG, "image/png"),
            ContentBlock::resource(resource),
        ])
    }

    /// Always fails, as a tool result with `isError: true`.
    #[tool]
    async fn test_error_handling(&self) -> Result<String, String> {
        Err("This tool intentionally returns an error for testing".into())
    }
}
