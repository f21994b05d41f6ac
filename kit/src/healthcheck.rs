//! The `healthcheck` subcommand: probes the health endpoint so a container HEALTHCHECK works
//! without a shell or curl in the image. Exit 0 when healthy, 1 otherwise.

use crate::config::HealthcheckConfig;

pub async fn run(config: &HealthcheckConfig) -> i32 {
    let url = config.target();
    let client = match reqwest::Client::builder().timeout(config.timeout).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("unhealthy: cannot build an HTTP client: {e}");
            return 1;
        }
    };
    match client.get(url.clone()).send().await {
        Ok(response) if response.status().is_success() => {
            println!("healthy: {url} answered {}", response.status());
            0
        }
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            1
        }
        Err(e) => {
            eprintln!("unhealthy: {url} did not answer: {e}");
            1
        }
    }
}
