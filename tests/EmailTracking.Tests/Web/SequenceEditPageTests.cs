using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Web;

/// <summary>The sequence form (/sequences/{id}/edit) as the server renders it and the browser posts it.</summary>
public sealed class SequenceEditPageTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";

    /// <summary>
    /// A sequence whose mailbox was disconnected: its form chooses no mailbox, and saving asks for one. The browser chose
    /// the first of the user's other mailboxes by itself, so that saving a new name moved the sequence's sends to an
    /// address the user had not picked.
    /// </summary>
    [Fact]
    public async Task A_sequence_whose_mailbox_was_disconnected_is_not_moved_to_another_by_saving_its_form()
    {
        var user = await app.NewUserAsync(password: Password);
        MailboxConnection Mailbox(string address) => new()
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = address, ProtectedSecret = "unused",
            Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
        };
        var (kept, gone) = (Mailbox(user.Email), Mailbox("sales-" + user.Email));
        var template = new MailTemplate
        {
            TeamId = user.TeamId, UserId = user.Id, Name = "Intro", Subject = "Hello", Html = "<p>Hello</p>", CreatedAt = DateTimeOffset.UtcNow,
            UpdatedAt = DateTimeOffset.UtcNow,
        };
        var sequence = new Sequence
        {
            TeamId = user.TeamId, UserId = user.Id, Name = "Outreach", MailboxId = gone.Id, TimeZone = "Europe/Berlin", Status = SequenceStatus.Paused,
            CreatedAt = DateTimeOffset.UtcNow, Steps = [new SequenceStep { Position = 0, TemplateId = template.Id, WindowStart = new(9, 0), WindowEnd = new(17, 0) }],
        };
        await app.WithDbAsync(db => { db.AddRange(kept, gone, template, sequence); return db.SaveChangesAsync(); });
        await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == gone.Id).ExecuteDeleteAsync());

        var web = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        Assert.Equal(HttpStatusCode.Redirect, (await SignInTests.PostLoginAsync(web, new() { ["Email"] = user.Email, ["Password"] = Password })).StatusCode);
        var page = await web.GetStringAsync($"/sequences/{sequence.Id}/edit");
        var select = WebUtility.HtmlDecode(Regex.Match(page, "<select name=\"Form.MailboxId\".*?</select>", RegexOptions.Singleline).Value);
        Assert.StartsWith("<option value=\"\" selected>(its mailbox was disconnected: choose one)</option>", Regex.Match(select, "<option.*", RegexOptions.Singleline).Value);
        Assert.Contains($"<option value=\"{kept.Id}\">{user.Email} (needs attention)</option>", select);

        // Saved as the browser posts the form: the mailbox is asked for, and nothing changes.
        var res = await web.PostAsync($"/sequences/{sequence.Id}/edit", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Form.Name"] = "Outreach 2", ["Form.MailboxId"] = "", ["Form.TimeZone"] = "Europe/Berlin", ["Form.AutoReplyPauseDays"] = "7",
            ["Form.Steps[0].TemplateId"] = template.Id.ToString(), ["Form.Steps[0].DelayDays"] = "0", ["Form.Steps[0].BusinessDaysOnly"] = "true",
            ["Form.Steps[0].WindowStart"] = "09:00", ["Form.Steps[0].WindowEnd"] = "17:00",
            ["__RequestVerificationToken"] = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value,
        }));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var html = WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.Contains("Choose one of your connected mailboxes", Regex.Match(html, "<ul class=\"field-errors\" data-field=\"mailboxId\"[^>]*>(.*?)</ul>", RegexOptions.Singleline).Value);
        var stored = app.WithDb(db => db.Sequences.AsNoTracking().Single(s => s.Id == sequence.Id));
        Assert.Equal(("Outreach", gone.Id), (stored.Name, stored.MailboxId));
    }
}
