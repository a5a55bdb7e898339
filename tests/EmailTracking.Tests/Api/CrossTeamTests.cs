using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Api;

/// <summary>
/// A user never reaches another team's things: every endpoint in the routing table that takes an id (so one added later
/// too) is called by an admin of another team with the id of a real object of each kind, with each of its methods, and
/// answers 404: the API to their token, the pages to their signed-in browser. Nothing of the objects changes.
/// </summary>
public sealed class CrossTeamTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Every_endpoint_that_takes_an_id_answers_404_to_another_teams_admin_and_changes_nothing()
    {
        var owner = await app.NewUserAsync(role: TeamRole.Admin);
        var registered = await owner.RegisterSimpleAsync();
        var ids = await SeedAsync(owner, registered.GetProperty("id").GetGuid());
        var before = Snapshot(owner);

        const string password = "Correct-horse-battery-9";
        var stranger = await app.NewUserAsync(role: TeamRole.Admin, password: password);
        // The API answers the stranger's token; the pages, their signed-in browser.
        var browser = await SignInAsync(stranger.Email, password);
        var endpoints = Routes.Endpoints(app)
            .Where(e => e.RoutePattern.Parameters.Any(p => p.Name == "id")).ToList();
        Assert.True(endpoints.Count > 20, $"only {endpoints.Count} endpoints with an id");
        var problems = new List<string>();
        var checkedCount = 0;
        foreach (var endpoint in endpoints)
        {
            var raw = endpoint.RoutePattern.RawText ?? "";
            var kind = ids.Keys.Where(prefix => raw.TrimStart('/').StartsWith(prefix + "/", StringComparison.Ordinal)).MaxBy(p => p.Length);
            if (kind is null)
            {
                problems.Add($"{raw}: no object kind known for this route; add its prefix to {nameof(SeedAsync)}");
                continue;
            }
            var path = Routes.Path(endpoint.RoutePattern, parameter => parameter.Name == "id" ? ids[kind] : "1");
            foreach (var method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path);
                if (method is "POST" or "PUT" or "PATCH") request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                var client = raw.TrimStart('/').StartsWith("api/", StringComparison.Ordinal) ? stranger.Client : browser;
                using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                checkedCount++;
                if (response.StatusCode != HttpStatusCode.NotFound) problems.Add($"{method} {raw}: {(int)response.StatusCode}");
            }
        }
        Assert.True(problems.Count == 0, $"{problems.Count} problems in {checkedCount} requests:\n" + string.Join("\n", problems));
        Assert.Equal(before, Snapshot(owner));
    }

    /// <summary>A client signed in to the web app through its login form, as a browser is.</summary>
    async Task<HttpClient> SignInAsync(string email, string password)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var form = await client.GetStringAsync("/login");
        var token = Regex.Match(form, "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
        var signIn = await client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = email, ["Password"] = password, ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);
        return client;
    }

    /// <summary>One object of each kind an id route names, owned by <paramref name="owner"/>'s team, by route prefix.</summary>
    async Task<Dictionary<string, string>> SeedAsync(TestUser owner, Guid message)
    {
        var now = DateTimeOffset.UtcNow;
        var mailbox = new MailboxConnection
        {
            TeamId = owner.TeamId, UserId = owner.Id, Kind = MailboxKind.Imap, Address = owner.Email, ProtectedSecret = "unused",
            Status = MailboxStatus.Disabled, CreatedAt = now,
        };
        var content = new ContentItem
        {
            TeamId = owner.TeamId, UserId = owner.Id, Name = "deck.pdf", FileType = ContentFileType.Pdf, OriginalSha256 = new string('0', 64),
            OriginalSize = 1, PdfSha256 = new string('0', 64), PdfSize = 1, PageCount = 1, CreatedAt = now,
        };
        var template = new MailTemplate { TeamId = owner.TeamId, UserId = owner.Id, Name = "First", Subject = "Hello", Html = "<p>Hi</p>", CreatedAt = now, UpdatedAt = now };
        var sequence = new Sequence { TeamId = owner.TeamId, UserId = owner.Id, Name = "Outreach", MailboxId = mailbox.Id, TimeZone = "UTC", CreatedAt = now };
        sequence.Steps.Add(new SequenceStep { TemplateId = template.Id });
        var enrolment = new Enrolment
        {
            SequenceId = sequence.Id, TeamId = owner.TeamId, UserId = owner.Id, Address = "flynn@flynnsarcade.test", Domain = "flynnsarcade.test",
            Fields = "{}", TimeZone = "UTC", UnsubscribeToken = $"{Guid.NewGuid():N}", NextAt = now.AddDays(1), CreatedAt = now, UpdatedAt = now,
        };
        var webhook = new WebhookEndpoint { TeamId = owner.TeamId, Url = "https://hooks.example.com/et", ProtectedSecret = "unused", EventTypes = "reply", CreatedAt = now };
        var delivery = new OutboxDelivery
        {
            TeamId = owner.TeamId, TargetKind = "webhook", TargetId = webhook.Id, EventType = "reply", IdempotencyKey = $"{Guid.NewGuid():N}", Payload = "{}",
            State = DeliveryState.Dead, CreatedAt = now, NextAttemptAt = now,
        };
        await app.WithDbAsync(async db =>
        {
            db.AddRange(mailbox, content, template, sequence, enrolment, webhook, delivery);
            // The owner's Microsoft accounts, which another team's admin must not unlink.
            db.UserLogins.Add(new Microsoft.AspNetCore.Identity.IdentityUserLogin<Guid>
            {
                LoginProvider = "Microsoft", ProviderKey = $"72f988bf-86f1-41af-91ab-2d7cd011db47/{Guid.NewGuid()}", ProviderDisplayName = "Microsoft", UserId = owner.Id,
            });
            db.MicrosoftAccountLinks.Add(new MicrosoftAccountLink
            {
                UserId = owner.Id, TenantId = "9188040d-6c67-4c5b-b112-36a304b66dad", ObjectId = $"{Guid.NewGuid()}",
                DisplayName = "Flynn at Dillinger", SignInName = "kflynn@dillinger.test", LinkedAt = now,
            });
            await db.SaveChangesAsync();
        });
        var token = app.WithDb(db => db.ApiTokens.Where(t => t.UserId == owner.Id).Select(t => t.Id).First());
        return new()
        {
            ["api/messages"] = message.ToString(),
            ["messages"] = message.ToString(),
            ["api/mailboxes"] = mailbox.Id.ToString(),
            ["api/content"] = content.Id.ToString(),
            ["documents"] = content.Id.ToString(),
            ["api/templates"] = template.Id.ToString(),
            ["templates"] = template.Id.ToString(),
            ["api/sequences"] = sequence.Id.ToString(),
            ["sequences"] = sequence.Id.ToString(),
            ["api/enrolments"] = enrolment.Id.ToString(),
            ["api/webhooks"] = webhook.Id.ToString(),
            ["webhooks"] = webhook.Id.ToString(),
            ["api/outbox/deliveries"] = delivery.Id.ToString(),
            // The delivery page's id is the delivery's number: a webhook's Guid there matches no route (a 404 that proves nothing).
            ["webhooks/deliveries"] = delivery.Id.ToString(),
            ["api/tokens"] = token.ToString(),
            // The team's members: the owner themself, whom another team's admin must not demote, deactivate or uninvite.
            ["api/team/members"] = owner.Id.ToString(),
        };
    }

    /// <summary>Everything a call could change about the owner's objects, as text to compare.</summary>
    string Snapshot(TestUser owner) => app.WithDb(db => string.Join("\n",
        db.Messages.AsNoTracking().Where(x => x.TeamId == owner.TeamId).OrderBy(m => m.Id).Select(m => $"{m.Id} {m.Subject} {m.SentAt}").AsEnumerable()
            .Concat(db.Mailboxes.AsNoTracking().Where(x => x.TeamId == owner.TeamId).Select(m => $"{m.Id} {m.Status} {m.Address}").AsEnumerable())
            .Concat(db.Contents.AsNoTracking().Where(x => x.TeamId == owner.TeamId).Select(c => $"{c.Id} {c.Name} {c.AllowDownload} {c.DeletedAt}").AsEnumerable())
            .Concat(db.Templates.AsNoTracking().Where(x => x.TeamId == owner.TeamId).Select(t => $"{t.Id} {t.Name} {t.Subject} {t.Html}").AsEnumerable())
            .Concat(db.Sequences.AsNoTracking().Where(x => x.TeamId == owner.TeamId).Select(s => $"{s.Id} {s.Name} {s.Status}").AsEnumerable())
            .Concat(db.Enrolments.AsNoTracking().Where(x => x.TeamId == owner.TeamId).Select(e => $"{e.Id} {e.State} {e.StopReason}").AsEnumerable())
            .Concat(db.Webhooks.AsNoTracking().Where(x => x.TeamId == owner.TeamId).Select(w => $"{w.Id} {w.Url} {w.ProtectedSecret} {w.Enabled}").AsEnumerable())
            .Concat(db.OutboxDeliveries.AsNoTracking().Where(x => x.TeamId == owner.TeamId).Select(d => $"{d.Id} {d.State} {d.Attempts}").AsEnumerable())
            .Concat(db.ApiTokens.AsNoTracking().Where(x => x.UserId == owner.Id).Select(t => $"{t.Id} {t.RevokedAt}").AsEnumerable())
            .Concat(db.Users.AsNoTracking().Where(x => x.TeamId == owner.TeamId)
                .Select(u => $"{u.Id} {u.Role} {u.LockoutEnd} {u.SecurityStamp} {u.InvitedAt} {u.InvitationRevokedAt}").AsEnumerable())
            .Concat(db.MicrosoftAccountLinks.AsNoTracking().Where(l => db.Users.Any(u => u.Id == l.UserId && u.TeamId == owner.TeamId))
                .Select(l => $"{l.Id} {l.UserId} {l.TenantId} {l.ObjectId}").AsEnumerable())
            .Concat(db.UserLogins.AsNoTracking().Where(l => db.Users.Any(u => u.Id == l.UserId && u.TeamId == owner.TeamId))
                .Select(l => $"{l.UserId} {l.LoginProvider} {l.ProviderKey}").AsEnumerable())
            .Order(StringComparer.Ordinal)));
}
