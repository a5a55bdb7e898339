using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;
using MailKit;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Mail;

/// <summary>
/// Never twice, with a real crash: the server sends step 1 through Postfix and is killed with SIGKILL at a chosen
/// moment, before it records the send. Its Sent copy is stored first, marked as being sent, and unmarked once Postfix
/// accepted the mail. After a restart the scheduler looks in Sent: unmarked, the step left and is recorded; still
/// marked, it cannot be known and the enrolment stops with "may or may not have left"; never is it sent again.
/// </summary>
[Collection(MailCollection.Name)]
public sealed class SequenceCrashTests(ITestOutputHelper output) : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-seqcrash-").FullName;

    string Db => Path.Combine(dir, "et.db");

    Dictionary<string, string> Settings => new()
    {
        ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={Db}",
        ["Sequences__PollInterval"] = "00:00:01", ["Sequences__MinSpacing"] = "00:00:00",
        // The killed instance's lease runs out quickly, so that the restarted one can take the enrolment.
        ["Sequences__Lease"] = "00:00:04",
        // The test's Postfix and Dovecot listen on this machine.
        ["Mailboxes__AllowPrivateHosts"] = "true",
    };

    sealed record Crashed(string Token, Guid Sequence, string Subject, string MessageId);

    /// <summary>
    /// A sequence of two steps through <paramref name="imap"/> and <paramref name="smtp"/>, one enrolment, and the server
    /// killed where <paramref name="arm"/> says (it calls the kill it is given); the intent of step 1 is left unrecorded.
    /// </summary>
    async Task<Crashed> EnrolAndKillAsync(ImapKillProxy imap, SmtpFaultProxy smtp, Action<Action> arm)
    {
        var sender = MailServer.UniqueSender().Address;
        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, Settings, "users", "add", "--email", sender, "--team", "Crash", "--plan", "team");
        Assert.True(code == 0, stderr);
        var token = stdout.Trim();
        var server = await ServerProcess.StartAsync(dir, Settings);
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var subject = MailServer.UniqueSubject("Crash");
        Guid sequence;
        try
        {
            using var api = server.Api(token);
            var connect = await api.PostAsJsonAsync("/api/mailboxes/imap", new
            {
                address = sender, username = MailServer.Sender, password = MailServer.Password,
                imap = new { host = "127.0.0.1", port = imap.Port, security = "none" },
                smtp = new { host = "127.0.0.1", port = smtp.Port, security = "none" },
            }, TestApi.Json);
            var connected = await connect.Content.ReadAsStringAsync();
            Assert.True(connect.StatusCode == HttpStatusCode.Created, connected);
            var mailbox = JsonDocument.Parse(connected).RootElement.GetProperty("id").GetGuid();
            var template = await api.PostAsJsonAsync("/api/templates", new { name = "Intro", subject, html = "<p>Hi {{ first_name }}.</p>" });
            var templateId = JsonDocument.Parse(await template.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
            var seq = await api.PostAsJsonAsync("/api/sequences", new
            {
                name = "Crash", mailboxId = mailbox, timeZone = "UTC",
                steps = new object[]
                {
                    new { templateId, delayDays = 0, businessDaysOnly = false, windowStart = "00:00", windowEnd = "23:59" },
                    new { templateId, delayDays = 30, businessDaysOnly = false, windowStart = "00:00", windowEnd = "23:59" },
                },
            }, TestApi.Json);
            var seqText = await seq.Content.ReadAsStringAsync();
            Assert.True(seq.StatusCode == HttpStatusCode.Created, seqText);
            sequence = JsonDocument.Parse(seqText).RootElement.GetProperty("id").GetGuid();

            var killed = new TaskCompletionSource();
            arm(() =>
            {
                server.Kill();
                killed.TrySetResult();
            });
            var enrol = await api.PostAsJsonAsync($"/api/sequences/{sequence}/enrolments", new { recipients = new[] { new { email = bob, firstName = "Bob" } } });
            Assert.Equal(HttpStatusCode.OK, enrol.StatusCode);
            await killed.Task.WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(server.HasExited);
        }
        finally
        {
            output.WriteLine(server.Output);
            await server.DisposeAsync();
        }

        // What the crash left: the intent, not the record.
        Assert.Equal(0, Scalar(Db, "SELECT State FROM SequenceSends"));
        var messageId = (string)ServerProcess.SqliteScalar(Db, "SELECT MessageIdHeader FROM SequenceSends")!;
        return new Crashed(token, sequence, subject, messageId);
    }

    /// <summary>Restarts the server until the enrolment has moved on from the crash (its step recorded, or it stopped); its row.</summary>
    async Task<JsonElement> RestartAsync(Crashed crashed)
    {
        var again = await ServerProcess.StartAsync(dir, Settings);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Scalar(Db, "SELECT State FROM SequenceSends") == 0 && Scalar(Db, "SELECT State FROM Enrolments") != 3)
            {
                Assert.True(DateTime.UtcNow < deadline, "the restarted server did not settle the step\n" + again.Output);
                await Task.Delay(250);
            }
            // A pass or two more: nothing else may go.
            await Task.Delay(TimeSpan.FromSeconds(3));
            using var api = again.Api(crashed.Token);
            var rows = await api.GetJsonAsync($"/api/sequences/{crashed.Sequence}/enrolments");
            output.WriteLine(rows.ToString());
            return rows.EnumerateArray().Single();
        }
        finally
        {
            await again.DisposeAsync();
        }
    }

    /// <summary>How many copies of the step Bob has, after a wait for any late delivery.</summary>
    static async Task<int> BobsCopiesAsync(string subject)
    {
        await Task.Delay(TimeSpan.FromSeconds(2));
        using var imap = await MailServer.ConnectImapAsync(MailServer.Bob);
        await imap.Inbox.OpenAsync(FolderAccess.ReadOnly);
        return (await imap.Inbox.SearchAsync(MailKit.Search.SearchQuery.SubjectContains(subject))).Count;
    }

    [Fact]
    public async Task A_server_killed_after_the_step_left_and_its_Sent_copy_was_unmarked_records_it_after_restart_and_sends_no_duplicate()
    {
        await using var imap = new ImapKillProxy(MailServer.ImapHost, MailServer.ImapPort);
        await using var smtp = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        // The moment the Sent copy has lost its mark (Postfix took the mail), the server dies.
        var crashed = await EnrolAndKillAsync(imap, smtp, kill => imap.Arm(kill, "UID STORE"));
        await MailServer.WaitForMessageIdAsync(MailServer.Bob, crashed.MessageId);

        var row = await RestartAsync(crashed);

        Assert.Equal(1, Scalar(Db, "SELECT State FROM SequenceSends"));
        Assert.Equal(1, row.GetProperty("nextStep").GetInt32());
        Assert.Equal("active", row.GetProperty("state").GetString());
        Assert.Equal(1, Scalar(Db, "SELECT COUNT(*) FROM SequenceSends"));
        Assert.Equal(1, await BobsCopiesAsync(crashed.Subject));
    }

    [Fact]
    public async Task A_server_killed_after_Postfix_accepted_the_step_but_before_it_heard_so_stops_the_enrolment_and_sends_no_duplicate()
    {
        await using var imap = new ImapKillProxy(MailServer.ImapHost, MailServer.ImapPort);
        await using var smtp = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        // Postfix has the mail; the server dies before its 250 reaches it (so before anything is stored or unmarked).
        var crashed = await EnrolAndKillAsync(imap, smtp, kill => smtp.OnAccepted(kill));
        await MailServer.WaitForMessageIdAsync(MailServer.Bob, crashed.MessageId);

        var row = await RestartAsync(crashed);

        Assert.Equal(1, await BobsCopiesAsync(crashed.Subject));
        // The Sent copy still says "being sent": it may or may not have left, and the sender is told so.
        Assert.Equal("stopped", row.GetProperty("state").GetString());
        Assert.Contains("may or may not have left", row.GetProperty("note").GetString());
        Assert.Equal(1, Scalar(Db, "SELECT COUNT(*) FROM SequenceSends"));
    }

    [Fact]
    public async Task A_server_killed_once_the_Sent_copy_was_stored_before_the_hand_over_stops_the_enrolment_and_nothing_left()
    {
        await using var imap = new ImapKillProxy(MailServer.ImapHost, MailServer.ImapPort);
        await using var smtp = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var crashed = await EnrolAndKillAsync(imap, smtp, kill => imap.Arm(kill, "APPEND"));

        var row = await RestartAsync(crashed);

        // The copy is marked: from the Sent folder this moment cannot be told from the one after the hand-over.
        Assert.Equal("stopped", row.GetProperty("state").GetString());
        Assert.Contains("may or may not have left", row.GetProperty("note").GetString());
        Assert.Equal(0, await BobsCopiesAsync(crashed.Subject));
    }

    static long Scalar(string db, string sql) => Convert.ToInt64(ServerProcess.SqliteScalar(db, sql) ?? -1L, System.Globalization.CultureInfo.InvariantCulture);

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
