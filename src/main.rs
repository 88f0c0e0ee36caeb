use clap::{Parser, Subcommand};

/// Kubernetes operator for AWS API Gateway V2 integrations.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the ApiIntegration CustomResourceDefinition as YAML.
    Crd,
}

fn main() {
    match Cli::parse().command {
        Command::Crd => print!("{}", apigw_operator::crd::crd_yaml()),
    }
}
