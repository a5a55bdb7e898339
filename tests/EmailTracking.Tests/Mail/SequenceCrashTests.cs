using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;
using MailKit;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Mail;

/// <summary>
/// Never twice, with a real crash: the server sends step 1 through Postfix, stores it in the Sent folder, and is
/// killed with SIGKILL at that moment — before it records the send. After a restart the scheduler finds the step's
/// Message-ID in Sent and records it; the recipient has one copy.
/// </summary>
[Collection(MailCollection.Name)]
public sealed class SequenceCrashTests(ITestOutputHelper output) : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-seqcrash-").FullName;

    [Fact]
    public async Task A_server_killed_between_sending_a_step_and_recording_it_sends_no_duplicate_after_restart()
    {
        var db = Path.Combine(dir, "et.db");
        var settings = new Dictionary<string, string>
        {
            ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={db}",
            ["Sequences__PollInterval"] = "00:00:01", ["Sequences__MinSpacing"] = "00:00:00",
            // The killed instance's lease runs out quickly, so that the restarted one can take the enrolment.
            ["Sequences__Lease"] = "00:00:04",
            // The test's Postfix and Dovecot listen on this machine.
            ["Mailboxes__AllowPrivateHosts"] = "true",
        };
        var sender = MailServer.UniqueSender().Address;
        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, settings, "users", "add", "--email", sender, "--team", "Crash", "--plan", "team");
        Assert.True(code == 0, stderr);
        var token = stdout.Trim();
        await using var proxy = new ImapKillProxy(MailServer.ImapHost, MailServer.ImapPort);

        var server = await ServerProcess.StartAsync(dir, settings);
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        string subject = MailServer.UniqueSubject("Crash");
        Guid sequence;
        try
        {
            using var api = server.Api(token);
            var connect = await api.PostAsJsonAsync("/api/mailboxes/imap", new
            {
                address = sender, username = MailServer.Sender, password = MailServer.Password,
                imap = new { host = "127.0.0.1", port = proxy.Port, security = "none" },
                smtp = new { host = MailServer.SmtpHost, port = MailServer.SmtpPort, security = "none" },
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

            // The moment the Sent folder has stored step 1, the server dies.
            var killed = new TaskCompletionSource();
            proxy.Arm(() =>
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

        // What the crash left: the intent, not the record; the mail delivered once.
        Assert.Equal(0, Scalar(db, "SELECT State FROM SequenceSends"));
        var messageId = (string)ServerProcess.SqliteScalar(db, "SELECT MessageIdHeader FROM SequenceSends")!;
        await MailServer.WaitForMessageIdAsync(MailServer.Bob, messageId);

        var again = await ServerProcess.StartAsync(dir, settings);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (Scalar(db, "SELECT State FROM SequenceSends") != 1)
            {
                Assert.True(DateTime.UtcNow < deadline, "the restarted server did not record the step\n" + again.Output);
                await Task.Delay(250);
            }
            using var api = again.Api(token);
            var rows = await api.GetJsonAsync($"/api/sequences/{sequence}/enrolments");
            var row = rows.EnumerateArray().Single();
            Assert.Equal(1, row.GetProperty("nextStep").GetInt32());
            Assert.Equal("active", row.GetProperty("state").GetString());
        }
        finally
        {
            await again.DisposeAsync();
        }
        Assert.Equal(1, Scalar(db, "SELECT COUNT(*) FROM SequenceSends"));
        // Bob has exactly one copy of step 1.
        await Task.Delay(TimeSpan.FromSeconds(2));
        using var imap = await MailServer.ConnectImapAsync(MailServer.Bob);
        await imap.Inbox.OpenAsync(FolderAccess.ReadOnly);
        Assert.Single(await imap.Inbox.SearchAsync(MailKit.Search.SearchQuery.SubjectContains(subject)));
    }

    static long Scalar(string db, string sql) => Convert.ToInt64(ServerProcess.SqliteScalar(db, sql) ?? -1L, System.Globalization.CultureInfo.InvariantCulture);

    public void Dispose()
    {
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }
}
