using System.Net;
using System.Net.Http.Headers;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.RealServer;

[Collection(CommandLineCollection.Name)]
public sealed class CliTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-cli-").FullName;

    Dictionary<string, string> Settings => new()
    {
        ["Database__Provider"] = "Sqlite",
        ["ConnectionStrings__Default"] = $"Data Source={Path.Combine(dir, "cli.db")}",
    };

    [Fact]
    public async Task Users_add_creates_a_user_whose_printed_token_works_against_the_server()
    {
        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--email", "Flynn@Encom.test", "--team", "Encom", "--plan", "team");
        Assert.True(code == 0, stderr);
        Assert.Contains("team 'Encom' on the team plan", stderr);
        var token = stdout.Trim();
        Assert.Matches("^et_[A-Za-z0-9_-]{43}$", token);

        // A second user in the same team is a member; the same address twice is refused with a clear message.
        // A member added without --plan leaves the team's plan as it is.
        var second = await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--email", "alan@encom.test", "--team", "Encom");
        Assert.Equal(0, second.Code);
        Assert.Contains("(member)", second.Err);
        Assert.Contains("on the team plan", second.Err);
        var dup = await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--email", "flynn@encom.test", "--team", "Encom");
        Assert.Equal(2, dup.Code);
        Assert.Contains("already belongs to a user", dup.Err);
        var missing = await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--team", "Encom");
        Assert.NotEqual(0, missing.Code);

        var list = await ServerProcess.RunCliAsync(dir, Settings, "users", "list");
        Assert.Contains("flynn@encom.test\tadmin\tEncom\tteam", list.Out);

        // The plan changes with `teams plan` (what the solo plan's "document tracking needs the team plan" answer says).
        var solo = await ServerProcess.RunCliAsync(dir, Settings, "teams", "plan", "--team", "Encom", "--plan", "solo");
        Assert.True(solo.Code == 0, solo.Err);
        Assert.Contains("Team 'Encom' is now on the solo plan", solo.Err);
        Assert.Equal(2, (await ServerProcess.RunCliAsync(dir, Settings, "teams", "plan", "--team", "Nobody", "--plan", "team")).Code);
        Assert.Equal(0, (await ServerProcess.RunCliAsync(dir, Settings, "teams", "plan", "--team", "Encom", "--plan", "team")).Code);

        await using var server = await ServerProcess.StartAsync(dir, Settings);
        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var me = await http.GetStringAsync(server.BaseUrl + "/api/me");
        Assert.Contains("\"email\":\"flynn@encom.test\"", me);
        Assert.Contains("\"plan\":\"team\"", me);
        Assert.Contains("\"role\":\"admin\"", me);
    }

    /// <summary>An administrator confirms an address for a user (a server without a mail relay sends no confirmation mail).</summary>
    [Fact]
    public async Task Users_confirm_address_confirms_an_alias_and_refuses_another_users_address()
    {
        Assert.Equal(0, (await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--email", "flynn@encom.test", "--team", "Encom", "--plan", "team")).Code);
        Assert.Equal(0, (await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--email", "alan@encom.test", "--team", "Encom")).Code);
        var ok = await ServerProcess.RunCliAsync(dir, Settings, "users", "confirm-address", "--email", "flynn@encom.test", "--address", "Sales@Encom.test");
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("Confirmed sales@encom.test as an address of flynn@encom.test", ok.Err);
        var taken = await ServerProcess.RunCliAsync(dir, Settings, "users", "confirm-address", "--email", "alan@encom.test", "--address", "sales@encom.test");
        Assert.Equal(2, taken.Code);
        Assert.Contains("belongs to another EmailTracking user", taken.Err);
        Assert.Equal(2, (await ServerProcess.RunCliAsync(dir, Settings, "users", "confirm-address", "--email", "nobody@encom.test", "--address", "x@encom.test")).Code);
    }

    /// <summary>An administrator sets a forgotten password, or the first one of a user made without one.</summary>
    [Fact]
    public async Task Users_set_password_reads_it_from_standard_input_checks_the_rules_and_lets_the_user_sign_in()
    {
        Assert.Equal(0, (await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--email", "flynn@encom.test", "--team", "Encom")).Code);
        var none = await ServerProcess.RunCliWithInputAsync(dir, Settings, "", "users", "set-password", "--email", "flynn@encom.test");
        Assert.Equal(2, none.Code);
        Assert.Contains("standard input", none.Err);
        var weak = await ServerProcess.RunCliWithInputAsync(dir, Settings, "short\n", "users", "set-password", "--email", "flynn@encom.test");
        Assert.Equal(2, weak.Code);
        Assert.Contains("at least 10 characters", weak.Err);
        Assert.Equal(2, (await ServerProcess.RunCliWithInputAsync(dir, Settings, "Grid-runner-1982\n", "users", "set-password", "--email", "nobody@encom.test")).Code);
        var ok = await ServerProcess.RunCliWithInputAsync(dir, Settings, "Grid-runner-1982\n", "users", "set-password", "--email", "Flynn@Encom.test");
        Assert.True(ok.Code == 0, ok.Err);
        Assert.Contains("Set the web sign-in password of flynn@encom.test", ok.Err);

        await using var server = await ServerProcess.StartAsync(dir, Settings);
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(server.BaseUrl) };
        var signedIn = await EmailTracking.Tests.Web.SignInTests.PostLoginAsync(browser, new() { ["Email"] = "flynn@encom.test", ["Password"] = "Grid-runner-1982" });
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        // Signed in, and asked first for a password of their own: this one the operator chose.
        Assert.Equal("/password", signedIn.Headers.Location!.OriginalString);
    }

    [Fact]
    public async Task A_wrong_provider_name_is_a_clear_error()
    {
        var settings = Settings;
        settings["Database__Provider"] = "oracle";
        var (code, _, stderr) = await ServerProcess.RunCliAsync(dir, settings, "migrate");
        Assert.NotEqual(0, code);
        Assert.Contains("Database:Provider 'oracle' is not known", stderr);
    }

    [Fact]
    public async Task A_database_that_cannot_be_reached_is_one_clear_line_and_exit_code_2()
    {
        var settings = Settings;
        settings["Database__Provider"] = "Postgres";
        settings["ConnectionStrings__Default"] = "Host=127.0.0.1;Port=1;Username=et;Database=et;Timeout=2";
        foreach (var args in new[] { new[] { "users", "add", "--email", "flynn@encom.test", "--team", "Encom" }, ["users", "list"], ["tokens", "create", "--email", "flynn@encom.test"], ["migrate"] })
        {
            var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, settings, args);
            Assert.True(code == 2, $"{string.Join(' ', args)}: {code}\n{stderr}");
            Assert.Contains("error: the database could not be used", stderr);
            Assert.Contains("ConnectionStrings__Default", stderr);
            Assert.DoesNotContain("   at ", stderr + stdout);
            Assert.Equal("", stdout);
        }
    }

    /// <summary>
    /// Run in another folder than the server's (or before the first `et migrate`), a command that reads the database
    /// made an empty SQLite file and a data/ folder there, printed EF's failed SQL on standard output (where a script
    /// reads the list) and ended on "no such table". It now says where it looked and what to do, and makes nothing.
    /// </summary>
    [Fact]
    public async Task A_command_run_where_there_is_no_database_says_so_prints_nothing_and_makes_none()
    {
        var here = new Dictionary<string, string> { ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = "" };
        var expected = Path.Combine(dir, "data", "emailtracking.db");
        foreach (var args in new[]
                 {
                     new[] { "users", "list" }, ["teams", "plan", "--team", "Encom", "--plan", "team"], ["mail", "list"], ["outbox", "list", "--team", "Encom"],
                     ["users", "deactivate", "--email", "flynn@encom.test"], ["tokens", "create", "--email", "flynn@encom.test"],
                 })
        {
            var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, here, args);
            Assert.True(code == 2, $"{string.Join(' ', args)}: {code}\n{stderr}");
            Assert.Equal("", stdout);
            Assert.Contains($"error: there is no database at {expected}", stderr);
            Assert.Contains("et migrate", stderr);
        }
        Assert.False(Directory.Exists(Path.Combine(dir, "data")));

        // A file that is there but holds no EmailTracking tables (an empty one, another program's).
        await File.WriteAllBytesAsync(Path.Combine(dir, "empty.db"), []);
        var empty = await ServerProcess.RunCliAsync(dir, new Dictionary<string, string> { ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = "Data Source=empty.db" }, "users", "list");
        Assert.True(empty.Code == 2, empty.Err);
        Assert.Equal("", empty.Out);
        Assert.Contains($"error: the database at {Path.Combine(dir, "empty.db")} has no EmailTracking tables", empty.Err);

        // A schema older than et's (a server with Database:MigrateOnStart off that was not migrated after an upgrade).
        Assert.Equal(0, (await ServerProcess.RunCliAsync(dir, Settings, "migrate")).Code);
        using (var sqlite = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, "cli.db")};Pooling=false"))
        {
            sqlite.Open();
            using var cmd = sqlite.CreateCommand();
            cmd.CommandText = "DELETE FROM \"__EFMigrationsHistory\" WHERE \"MigrationId\" = (SELECT max(\"MigrationId\") FROM \"__EFMigrationsHistory\")";
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }
        var older = await ServerProcess.RunCliAsync(dir, Settings, "users", "list");
        Assert.True(older.Code == 2, older.Err);
        Assert.Contains("is older than this et (1 migration to apply): run `et migrate`", older.Err);
    }

    /// <summary>
    /// `--out` naming a folder, or a file in a folder that does not exist, ended in an unhandled exception's stack trace
    /// and exit code 1. A file written is written whole (through a file beside it, moved over it), and nothing else is
    /// left beside it.
    /// </summary>
    [Fact]
    public async Task An_out_file_that_cannot_be_written_is_one_clear_line_and_one_that_can_is_replaced_whole()
    {
        string[][] commands =
        [
            ["gmail-deployment", "--base-url", "https://t.example.com/"],
            ["outlook-manifest", "--base-url", "https://t.example.com/", "--client-id", "6a1f0d3e-2b4c-4d5e-8f90-123456789abc"],
        ];
        var outDir = Directory.CreateDirectory(Path.Combine(dir, "out")).FullName;
        foreach (var command in commands)
        {
            foreach (var (path, says) in new[] { (outDir, "a directory, not a file"), (Path.Combine(dir, "no-such-folder", "file"), "there is no folder") })
            {
                var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, Settings, [.. command, "--out", path]);
                Assert.True(code == 2, $"{command[0]} --out {path}: {code}\n{stderr}");
                Assert.Contains($"error: cannot write \"{path}\": {says}", stderr);
                Assert.DoesNotContain("   at ", stderr);
                Assert.Equal("", stdout);
            }

            var file = Path.Combine(outDir, command[0]);
            await File.WriteAllTextAsync(file, "the old one");
            var printed = await ServerProcess.RunCliAsync(dir, Settings, command);
            var written = await ServerProcess.RunCliAsync(dir, Settings, [.. command, "--out", file]);
            Assert.True(written.Code == 0, written.Err);
            Assert.Equal(printed.Out, await File.ReadAllTextAsync(file));
        }
        Assert.Equal(commands.Select(c => c[0]).Order(), new DirectoryInfo(outDir).GetFiles().Select(f => f.Name).Order());
    }

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
