using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MimeKit;
using MimeKit.Utils;

namespace EmailTracking.Tests.Graph;

/// <summary>
/// An Outlook rule files an answer in a folder of its own ("Inbox/Customers", Archive) before the watch reads the Inbox.
/// The Graph watch lists the mailbox's folders and reads, by each folder's own delta, those where received mail lands,
/// and leaves alone those that hold none (Sent Items, read apart; Drafts, Deleted Items, Junk Email, Outbox).
/// </summary>
public abstract class GraphFoldersTests(GraphFixture f)
{
    const string Bob = "bob@partner.test";

    GraphApp App => f.App;
    FakeMicrosoft Fake => f.Fake;

    [Fact]
    public async Task A_reply_a_rule_files_in_a_folder_made_after_connecting_is_matched_and_recorded_once_though_also_archived()
    {
        var (user, address, mailboxId) = await App.ConnectedUserAsync();
        var (messageId, sentItem) = await SendAsync(user, address, "Proposal");
        // The rule's folder is made after the watch first listed the folders, inside the Inbox.
        var customers = Fake.AddFolder(address, "Customers", "inbox");
        var reply = Reply(sentItem, Bob, address, "Sounds good, let's talk Tuesday.");
        Fake.Deliver(address, reply, folder: customers);
        // The same answer again, archived: one record. No notification: the folders are read every poll interval.
        Fake.Deliver(address, reply, folder: "archive");
        var wire = "<" + reply.MessageId + ">";
        await Eventually.TrueAsync(() => Task.FromResult(Fake[address].MimeReads.GetValueOrDefault(wire) == 2),
            () => "both copies read; deltas: " + string.Join(" | ", Fake[address].DeltaLog));
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the filed reply");
        var inbound = Assert.Single(App.WithDb(db => db.InboundMessages.AsNoTracking().Where(i => i.TrackedMessageId == messageId).ToList()));
        Assert.Equal(reply.MessageId, inbound.InternetMessageId);
        Assert.NotNull(App.WithDb(db => db.MailboxCursors.AsNoTracking().FirstOrDefault(c => c.ConnectionId == mailboxId && c.Name == GraphWatch.FolderCursor(Fake.MailFolderOf(address, customers).Id))));
        var row = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == mailboxId);
        Assert.Equal("active", row.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, row.GetProperty("statusMessage").ValueKind);
        Assert.Empty(Fake.Unmatched);
    }

    [Fact]
    public async Task Deleted_Items_Junk_Drafts_Outbox_and_the_folders_inside_them_are_not_read()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var (messageId, sentItem) = await SendAsync(user, address, "Quote");
        var old = Fake.AddFolder(address, "Old project", "deleteditems");
        var notRead = new[] { "deleteditems", "junkemail", "drafts", "outbox", "conversationhistory", old };
        var ignored = notRead.Select(folder => Fake.Deliver(address, Reply(sentItem, "carol@partner.test", address, "In " + folder), folder: folder)).ToList();
        // An answer where one is read, after them all: once it is recorded, the folders were all listed and gone through.
        var archived = Fake.Deliver(address, Reply(sentItem, Bob, address, "Archived answer."), folder: "archive");
        await Eventually.TrueAsync(() => Task.FromResult(Fake[address].MimeReads.ContainsKey(archived.InternetMessageId)), "the archived reply read");
        // And one more reading of the folders, by the archive's delta link this time.
        var again = Fake.Deliver(address, Reply(sentItem, Bob, address, "Archived again."), folder: "archive");
        await Eventually.TrueAsync(async () => Fake[address].MimeReads.ContainsKey(again.InternetMessageId) && await RepliesAsync(user, messageId) >= 2,
            "the second archived reply");
        Assert.Equal(2, await RepliesAsync(user, messageId));
        Assert.All(ignored, m => Assert.False(Fake[address].MimeReads.ContainsKey(m.InternetMessageId), m.Subject));
        var log = Fake[address].DeltaLog;
        Assert.All(notRead, folder => Assert.DoesNotContain(log, l => l.StartsWith(folder + " ", StringComparison.Ordinal)));
        Assert.Equal(1, Fake[address].MimeReads[archived.InternetMessageId]);
        Assert.Equal(1, Fake[address].MimeReads[again.InternetMessageId]);
    }

    [Fact]
    public async Task A_restart_does_not_read_a_folders_messages_again()
    {
        var (user, address, mailboxId) = await App.ConnectedUserAsync();
        var (messageId, sentItem) = await SendAsync(user, address, "Renewal");
        var customers = Fake.AddFolder(address, "Customers");
        var early = Fake.Deliver(address, Reply(sentItem, Bob, address, "Before the restart."), folder: customers);
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the reply before the restart");

        // A new watch of the mailbox (a restart), knowing only what the database holds: it learns the well-known
        // folders' ids again first.
        var gets = Fake[address].FolderGets.Count;
        App.Services.GetServices<IHostedService>().OfType<MailboxWatcher>().Single().Restart(mailboxId);
        await Eventually.TrueAsync(() => Task.FromResult(Fake[address].FolderGets.Count > gets), "the new watch");
        var late = Fake.Deliver(address, Reply(sentItem, "carol@partner.test", address, "After the restart."), folder: customers);
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 2, "the reply after the restart");

        Assert.True(1 == Fake[address].MimeReads[early.InternetMessageId], string.Join(" | ", Fake[address].DeltaLog));
        Assert.Equal(1, Fake[address].MimeReads[late.InternetMessageId]);
    }

    /// <summary>The eight well-known folders a watch leaves alone or reads apart, as it asks for them.</summary>
    static readonly string[] WellKnown = ["inbox", "sentitems", "drafts", "deleteditems", "junkemail", "outbox", "conversationhistory", "syncissues"];

    /// <summary>
    /// The watch has read the folders once: an answer archived before it started is recorded, and one in Junk Email is
    /// not (its id, learnt at the start, is left alone).
    /// </summary>
    async Task ReadOnceAsync(TestUser user, string address, Guid messageId, FakeMicrosoft.Message sentItem)
    {
        var junk = Fake.Deliver(address, Reply(sentItem, "carol@partner.test", address, "In Junk"), folder: "junkemail");
        var archived = Fake.Deliver(address, Reply(sentItem, Bob, address, "Archived answer."), folder: "archive");
        await Eventually.TrueAsync(async () => Fake[address].MimeReads.ContainsKey(archived.InternetMessageId) && await RepliesAsync(user, messageId) == 1,
            "the archived reply");
        Assert.False(Fake[address].MimeReads.ContainsKey(junk.InternetMessageId));
    }

    [Fact]
    public async Task The_well_known_folders_ids_are_learnt_with_one_batch_request_and_a_folder_the_mailbox_lacks_is_no_matter()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var (messageId, sentItem) = await SendAsync(user, address, "Batch");
        await ReadOnceAsync(user, address, messageId, sentItem);

        var batch = Assert.Single(Fake[address].Batches);
        Assert.Equal(WellKnown.Select(f => $"GET /me/mailFolders/{f}"), batch.Select(step => step.Split('?')[0]));
        // Sync Issues is not in this mailbox: its 404 inside the batch is asked no further.
        Assert.Empty(Fake[address].SingleFolderGets);
        Assert.Equal(WellKnown.Order(), Fake[address].FolderGets.Order());
        Assert.Empty(Fake.Unmatched);
    }

    [Fact]
    public async Task When_the_batch_fails_as_a_whole_each_folder_is_asked_for_on_its_own()
    {
        var (user, address, _) = await App.ConnectedUserAsync(account => account.BatchRefusal = 400);
        var (messageId, sentItem) = await SendAsync(user, address, "No batch");
        await ReadOnceAsync(user, address, messageId, sentItem);

        Assert.Single(Fake[address].Batches);
        Assert.Equal(WellKnown, Fake[address].SingleFolderGets);
    }

    [Fact]
    public async Task A_request_the_batch_did_not_answer_is_asked_again_on_its_own()
    {
        var (user, address, _) = await App.ConnectedUserAsync(account => account.BatchStepRefusals["junkemail"] = 503);
        var (messageId, sentItem) = await SendAsync(user, address, "One again");
        await ReadOnceAsync(user, address, messageId, sentItem);

        Assert.Single(Fake[address].Batches);
        Assert.Equal(["junkemail"], Fake[address].SingleFolderGets);
    }

    [Fact]
    public async Task A_folder_Graph_refuses_is_named_on_the_mailbox_the_others_are_read_and_a_deleted_folder_loses_its_checkpoint()
    {
        var (user, address, mailboxId) = await App.ConnectedUserAsync();
        var (messageId, sentItem) = await SendAsync(user, address, "Shared");
        // Listed (and so tried) before the folder that holds the answer.
        var shared = Fake.AddFolder(address, "Shared with the team");
        Fake.MailFolderOf(address, shared).DeltaRefusal = 403;
        var vanishing = Fake.AddFolder(address, "Going away");
        Fake.MailFolderOf(address, vanishing).DeltaRefusal = 404;
        var customers = Fake.AddFolder(address, "Customers");
        Fake.Deliver(address, Reply(sentItem, "carol@partner.test", address, "In the shared folder."), folder: shared);
        Fake.Deliver(address, Reply(sentItem, Bob, address, "In Customers."), folder: customers);

        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the reply in the folder that can be read");
        await App.WaitForMailboxAsync(user, m => m.GetProperty("statusMessage").GetString()?.Contains("Going away", StringComparison.Ordinal) == true);
        var mailbox = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == mailboxId);
        Assert.Equal("active", mailbox.GetProperty("status").GetString());
        var message = mailbox.GetProperty("statusMessage").GetString()!;
        Assert.Contains("Some folders could not be read", message);
        Assert.Contains("Shared with the team: ErrorAccessDenied", message);
        Assert.Contains("Going away: ErrorItemNotFound", message);
        Assert.DoesNotContain("Customers", message);

        // Graph lets the folder be read again: its answer is recorded and the mailbox says nothing more.
        Fake.MailFolderOf(address, shared).DeltaRefusal = null;
        Fake.DeleteFolder(address, vanishing);
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 2, "the reply in the folder read at last");
        await App.WaitForMailboxAsync(user, m => m.GetProperty("statusMessage").ValueKind == JsonValueKind.Null);

        // A folder deleted for good loses its checkpoint.
        var name = GraphWatch.FolderCursor(Fake.MailFolderOf(address, customers).Id);
        Assert.True(App.WithDb(db => db.MailboxCursors.AsNoTracking().Any(c => c.ConnectionId == mailboxId && c.Name == name)));
        Fake.DeleteFolder(address, customers);
        await Eventually.TrueAsync(() => Task.FromResult(!App.WithDb(db => db.MailboxCursors.AsNoTracking().Any(c => c.ConnectionId == mailboxId && c.Name == name))),
            "the deleted folder's checkpoint removed");
        Assert.Equal(2, await RepliesAsync(user, messageId));
    }

    [Fact]
    public async Task Throttled_folders_are_waited_out_as_the_Inbox_is_and_not_named_as_a_folder_that_cannot_be_read()
    {
        // This watch runs on the test's clock: its waits are seen, not slept (see GraphConnectorTests).
        var app = new GraphApp(Fake, provider: f.Provider, settings: new Dictionary<string, string>
        {
            ["Mailboxes:Watch"] = "false",
            ["Mailboxes:MaxBackoff"] = "00:30:00",
        });
        await app.InitializeAsync();
        try
        {
            Fake.AppHandler = () => app.Server.CreateHandler();
            var user = await app.NewUserAsync();
            Fake.AddAccount(user.Email);
            Assert.Equal(HttpStatusCode.Redirect, (await user.Client.GetAsync(await app.SignInAsync(user, user.Email))).StatusCode);
            var mailboxId = app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id).Id);
            var customers = Fake.AddFolder(user.Email, "Customers");
            var clock = new RecordingClock(DateTimeOffset.UtcNow);
            Fake.ThrottleFolderListing(1000, retryAfter: 120);
            using var stop = new CancellationTokenSource();
            using var scope = app.Services.CreateScope();
            var watch = ActivatorUtilities.CreateInstance<GraphWatch>(scope.ServiceProvider, (TimeProvider)clock);
            var run = watch.RunAsync(mailboxId, stop.Token);
            try
            {
                Assert.Equal(TimeSpan.FromSeconds(120), await clock.NextDelayAsync());
                var mailbox = app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == mailboxId));
                Assert.Equal(MailboxStatus.Active, mailbox.Status);
                Assert.Contains("throttling", mailbox.StatusMessage);
                Assert.DoesNotContain("could not be read", mailbox.StatusMessage);
                Assert.Null(app.WithDb(db => db.MailboxCursors.AsNoTracking().FirstOrDefault(c => c.ConnectionId == mailboxId && c.Name == GraphWatch.FoldersCursor)));

                Fake.ThrottleFolderListing(0, 1);
                clock.Advance(TimeSpan.FromSeconds(120));
                var name = GraphWatch.FolderCursor(Fake.MailFolderOf(user.Email, customers).Id);
                await Eventually.TrueAsync(() => Task.FromResult(app.WithDb(db => db.MailboxCursors.AsNoTracking().Any(c => c.ConnectionId == mailboxId && c.Name == name))),
                    "the folders read after the wait");
                await Eventually.TrueAsync(() => Task.FromResult(app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == mailboxId)).StatusMessage is null),
                    "the mailbox no longer throttled");
            }
            finally
            {
                Fake.ThrottleFolderListing(0, 1);
                await stop.CancelAsync();
                await run.WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
        finally
        {
            Fake.AppHandler = () => App.Server.CreateHandler();
            await ((IAsyncLifetime)app).DisposeAsync();
        }
    }

    // ---- helpers ----

    async Task<(Guid MessageId, FakeMicrosoft.Message SentItem)> SendAsync(TestUser user, string address, string subject)
    {
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = address, subject, to = new[] { Bob }, html = "<p>Hello Bob, here is <a href=\"https://encom.test/deck\">the deck</a>.</p>",
        }, TestApi.Json);
        var text = await send.Content.ReadAsStringAsync();
        Assert.True(send.StatusCode == HttpStatusCode.Created, $"send: {(int)send.StatusCode} {text}");
        return (JsonDocument.Parse(text).RootElement.GetProperty("id").GetGuid(), Assert.Single(Fake.Folder(address, "sentitems")));
    }

    static MimeMessage Reply(FakeMicrosoft.Message original, string from, string to, string text)
    {
        var id = original.InternetMessageId.Trim('<', '>');
        var reply = new MimeMessage { Subject = "Re: " + original.Subject, MessageId = MimeUtils.GenerateMessageId("partner.test"), Date = DateTimeOffset.UtcNow, InReplyTo = id };
        reply.References.Add(id);
        reply.From.Add(MailboxAddress.Parse(from));
        reply.To.Add(MailboxAddress.Parse(to));
        reply.Body = new TextPart("plain") { Text = text };
        return reply;
    }

    static async Task<int> RepliesAsync(TestUser user, Guid messageId)
    {
        var detail = await user.Client.GetJsonAsync($"/api/messages/{messageId}");
        return detail.GetProperty("events").EnumerateArray().Count(e => e.GetProperty("kind").GetString() == "reply");
    }
}

public sealed class GraphFoldersOnSqlite(GraphSqliteFixture f) : GraphFoldersTests(f), IClassFixture<GraphSqliteFixture>;

public sealed class GraphFoldersOnPostgres(GraphPostgresFixture f) : GraphFoldersTests(f), IClassFixture<GraphPostgresFixture>;
