using System.CommandLine;

namespace EmailTracking.Cli;

public static class EtProgram
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("et — EmailTracking administration and diagnostics. Uses the same configuration as the server " +
            "(appsettings.json in the current directory and environment variables such as Database__Provider and ConnectionStrings__Default).");
        root.Subcommands.Add(Commands.Migrate());
        root.Subcommands.Add(Commands.Users());
        root.Subcommands.Add(Commands.Teams());
        root.Subcommands.Add(Commands.TokensCommand());
        root.Subcommands.Add(Commands.Classify());
        root.Subcommands.Add(Commands.GmailDeploymentCommand());
        root.Subcommands.Add(Commands.OutlookManifestCommand());
        root.Subcommands.Add(Commands.OutboxCommand());
        return await root.Parse(args).InvokeAsync();
    }
}
