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
        root.Subcommands.Add(Commands.MailCommand());
        try
        {
            return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (DatabaseFailure(e) is { } db)
        {
            // A database that is down or misnamed is the administrator's to fix: said in one line, not a stack trace.
            Console.Error.WriteLine($"error: the database could not be used ({db.Message}). Check Database__Provider and ConnectionStrings__Default, and that the database is up.");
            return 2;
        }
        catch (Exception e)
        {
            // What System.CommandLine's own handler would have printed.
            Console.Error.WriteLine($"Unhandled exception: {e}");
            return 1;
        }
    }

    /// <summary>The database's own error somewhere in the chain (EF wraps it, once per retry strategy or update).</summary>
    static System.Data.Common.DbException? DatabaseFailure(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
        {
            if (e is System.Data.Common.DbException db) return db;
        }
        return null;
    }
}
