//! `kafkit config show [--file F]`: the effective configuration of a kafkit service
//! (`kafkit-service`'s layers: defaults, the file, `KAFKIT_*` variables), one key per line
//! with its source; secrets redacted.

use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Prints every setting, its value and where it came from (default, FILE:LINE, env VAR).
    Show {
        /// A TOML (.toml) or YAML (.yaml, .yml) configuration file.
        #[arg(long, short, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Only the settings a file or variable sets.
        #[arg(long)]
        set_only: bool,
    },
}

pub fn run(cmd: ConfigCommand) -> Result<(), String> {
    let ConfigCommand::Show { file, set_only } = cmd;
    let config = kafkit_service::Config::load(file.as_deref()).map_err(|e| e.to_string())?;
    let entries: Vec<_> = config
        .entries()
        .into_iter()
        .filter(|e| !set_only || e.source != kafkit_service::config::ValueSource::Default)
        .collect();
    let width = entries.iter().map(|e| e.key.len() + e.value.len() + 3).max().unwrap_or(0).min(72);
    let mut out = std::io::stdout().lock();
    for e in entries {
        let line = format!("{} = {}", e.key, e.value);
        let _ = writeln!(out, "{line:<width$}  # {}", e.source);
    }
    Ok(())
}
