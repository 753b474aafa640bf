//! The seed's Python usage, translated: build a service from a registry, execute a script
//! with inputs and ids, and read `error_details` and `resource_usage` from the result.
//!
//! Run from the workspace root: `cargo run -p metaclaude-host --example execute`

use metaclaude::{ExecutionRequest, ToolExecutionService};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // tes = ToolExecutionService('registry.json')
    let tes = ToolExecutionService::open("examples/registry/registry.json")?;

    // result = tes.execute('validate_api_schema', {'schema_file': 'api.yaml'}, session_id=...)
    let result = tes
        .execute(
            ExecutionRequest::new("validate_api_schema")
                .input("schema_file", "data/api.json")
                .session_id("session-123")
                .correlation_id("request-456"),
        )
        .await;

    // if not result.success and result.error_details: ...
    if let (false, Some(err)) = (result.success, &result.error_details) {
        println!("Error Category: {}", err.category);
        println!("Suggestions:");
        for suggestion in &err.suggestions {
            println!("  - {suggestion}");
        }
    }

    // Check resource usage
    let usage = &result.resource_usage;
    println!("Success: {}", result.success);
    println!("Peak Memory: {:.1}MB", usage.peak_memory_mb);
    println!("CPU Time: {:.3}s", usage.cpu_time_seconds);
    println!("Output: {}", result.stdout.trim_end());
    Ok(())
}
