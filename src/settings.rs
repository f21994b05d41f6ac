//! The app's own settings: flags and `MCP_*` environment variables, beside the kit's in
//! `--help`. Add a field (or a flattened group) for each setting a tool needs.

#[derive(Debug, Clone, clap::Args)]
pub struct Settings {
    // weather-example:begin
    #[command(flatten)]
    pub weather: crate::weather::WeatherConfig,
    // weather-example:end
}
