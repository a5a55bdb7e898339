using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmailTracking.Tests.Api;

/// <summary>A server with a relay and the default limits on sending an invitation again (Team:InvitationResend*).</summary>
public abstract class InvitationLimitApp(DatabaseProvider db) : PasswordResetApp(db)
{
    protected override bool InvitationLimits => true;
}

public sealed class InvitationLimitSqliteApp() : InvitationLimitApp(DatabaseProvider.Sqlite);

public sealed class InvitationLimitPostgresApp() : InvitationLimitApp(DatabaseProvider.Postgres);

/// <summary>
/// An admin sends an invitation again at most once a minute per member, five times a day per member and twenty times an
/// hour across the team; the first mail to a member is not a resend. Over a limit nothing is sent: the page says why
/// (429), the API answers 429 with Retry-After, and requests made at the same moment send one mail.
/// </summary>
public abstract class InvitationLimitTests(InvitationLimitApp app)
{
    const string Password = "Correct-horse-battery-9";

    static string NewTeam() => $"team-{Guid.NewGuid():N}";

    static string NewAddress() => $"lim{Guid.NewGuid():N}"[..14] + "@invited.test";

    async Task<Guid> AddAsync(TestUser admin, string email)
    {
        var res = await admin.Client.PostAsJsonAsync("/api/team/members", new { email, displayName = "Sam Flynn", role = "member" });
        Assert.True(res.StatusCode == HttpStatusCode.Created, await res.Content.ReadAsStringAsync());
        return (await res.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetGuid();
    }

    static Task<HttpResponseMessage> ResendAsync(TestUser admin, Guid id) => admin.Client.PostAsync($"/api/team/members/{id}/invitation", null);

    /// <summary>The 429's problem, its Retry-After in seconds checked to lie within the range.</summary>
    static async Task<string> TooManyAsync(HttpResponseMessage res, double minSeconds, double maxSeconds)
    {
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.TooManyRequests, $"{(int)res.StatusCode}: {text}");
        var seconds = res.Headers.RetryAfter?.Delta?.TotalSeconds;
        Assert.True(seconds is { } s && s >= minSeconds && s <= maxSeconds, $"Retry-After {seconds} not within {minSeconds}–{maxSeconds} s");
        var problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal("Too many invitation mails.", problem.GetProperty("title").GetString());
        Assert.Equal((int)seconds!.Value, problem.GetProperty("retryAfter").GetInt32());
        return problem.GetProperty("detail").GetString()!;
    }

    int Mails(string address) => app.Relay.To(address).Count;

    [Fact]
    public async Task An_invitation_goes_again_once_a_minute_and_five_times_a_day_and_a_refused_one_sends_nothing()
    {
        var admin = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        var email = NewAddress();
        var id = await AddAsync(admin, email);
        await app.Relay.MailAsync(email, 1);

        // Right after the first mail: too soon, and the admin is told when.
        var detail = await TooManyAsync(await ResendAsync(admin, id), 55, 60);
        Assert.Contains($"An invitation went to {email} less than a minute ago", detail);
        Assert.Equal(1, Mails(email));

        for (var resend = 1; resend <= 5; resend++)
        {
            app.Clock.Advance(TimeSpan.FromSeconds(61));
            var res = await ResendAsync(admin, id);
            Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
            Assert.Equal(1 + resend, Mails(email));
        }
        app.Clock.Advance(TimeSpan.FromSeconds(61));
        // The five resends began 5 × 61 + 61 seconds ago: the first of them counts for the rest of its day.
        detail = await TooManyAsync(await ResendAsync(admin, id), 86_400 - 6 * 61 - 5, 86_400 - 5 * 61);
        Assert.Contains($"The invitation of {email} was sent again 5 times in the last 24 hours", detail);
        Assert.Equal(6, Mails(email));
        Assert.Equal("pending", (await admin.Client.GetJsonAsync("/api/team/members")).EnumerateArray()
            .Single(m => m.GetProperty("id").GetGuid() == id).GetProperty("invitation").GetString());

        // A day after the first resend, one goes again.
        app.Clock.Advance(TimeSpan.FromDays(1));
        Assert.True((await ResendAsync(admin, id)).IsSuccessStatusCode);
        Assert.Equal(7, Mails(email));
    }

    [Fact]
    public async Task A_team_sends_invitations_again_twenty_times_an_hour_and_first_invitations_still_go()
    {
        var admin = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        var members = new List<(Guid Id, string Email)>();
        for (var i = 0; i < 21; i++)
        {
            var email = NewAddress();
            members.Add((await AddAsync(admin, email), email));
        }
        app.Clock.Advance(TimeSpan.FromSeconds(61));
        foreach (var (id, email) in members.Take(20))
        {
            var res = await ResendAsync(admin, id);
            Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
            Assert.Equal(2, Mails(email));
        }
        var last = members[^1];
        var detail = await TooManyAsync(await ResendAsync(admin, last.Id), 3_000, 3_600);
        Assert.Contains("Your team sent invitations again 20 times in the last hour", detail);
        Assert.Equal(1, Mails(last.Email));

        // A first invitation is not a resend: a new member is mailed all the same.
        var newcomer = NewAddress();
        await AddAsync(admin, newcomer);
        Assert.Equal(1, Mails(newcomer));
        // Another team's admins are not held back by this team's resends.
        var other = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        var theirs = NewAddress();
        var theirId = await AddAsync(other, theirs);
        app.Clock.Advance(TimeSpan.FromSeconds(61));
        Assert.True((await ResendAsync(other, theirId)).IsSuccessStatusCode);
        Assert.Equal(2, Mails(theirs));

        // An hour after the resends, the team sends again.
        app.Clock.Advance(TimeSpan.FromHours(1));
        Assert.True((await ResendAsync(admin, last.Id)).IsSuccessStatusCode);
        Assert.Equal(2, Mails(last.Email));
    }

    [Fact]
    public async Task Resends_asked_for_at_the_same_moment_send_one_mail()
    {
        var admin = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        var email = NewAddress();
        var id = await AddAsync(admin, email);
        app.Clock.Advance(TimeSpan.FromSeconds(61));

        // Counted and recorded one at a time: each request reads the others' rows, rather than all counting none.
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => ResendAsync(admin, id)));
        Assert.Equal(1, answers.Count(a => a.IsSuccessStatusCode));
        Assert.Equal(7, answers.Count(a => a.StatusCode == HttpStatusCode.TooManyRequests));
        Assert.Equal(2, Mails(email));
        Assert.Equal(2, app.WithDb(db => db.InvitationMails.Count(m => m.MemberId == id)));
    }

    [Fact]
    public async Task The_team_page_says_why_an_invitation_was_not_sent_again()
    {
        var admin = await app.NewUserAsync(team: NewTeam(), role: TeamRole.Admin, password: Password);
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        Assert.Equal(HttpStatusCode.Redirect, (await SignInTests.PostLoginAsync(browser, new() { ["Email"] = admin.Email, ["Password"] = Password })).StatusCode);
        var email = NewAddress();
        var id = await AddAsync(admin, email);
        await app.Relay.MailAsync(email, 1);

        var token = Regex.Match(await browser.GetStringAsync("/team"), "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var res = await browser.PostAsync($"/team?handler=Invite&id={id}",
            new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = token }));
        Assert.Equal(HttpStatusCode.TooManyRequests, res.StatusCode);
        Assert.InRange(res.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 55, 60);
        var html = WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.Contains($"An invitation went to {email} less than a minute ago: wait for it (they may look in spam too), or send it again later.", html);
        // The page is the Team page again, listing the member still invited.
        Assert.Contains(email, html);
        Assert.Contains(">Resend invitation<", html);
        Assert.Equal(1, Mails(email));
    }
}

public sealed class InvitationLimitOnSqlite(InvitationLimitSqliteApp app) : InvitationLimitTests(app), IClassFixture<InvitationLimitSqliteApp>;

public sealed class InvitationLimitOnPostgres(InvitationLimitPostgresApp app) : InvitationLimitTests(app), IClassFixture<InvitationLimitPostgresApp>;
