using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Server.Salesforce;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EmailTracking.Tests.Salesforce;

/// <summary>
/// The Salesforce connector against a fake Salesforce: connecting (web-server flow and JWT bearer), sent mail and
/// answers as Tasks on the right Contact or Lead, unknown recipients, redelivery, expired and revoked tokens, limits,
/// validation rules, outages, SOQL escaping, settings and the page. The target is driven directly, as the outbox
/// worker will drive it.
/// </summary>
public abstract class SalesforceConnectorTests(SalesforceApp app)
{
    FakeSalesforce Sf => app.Salesforce;

    // ---- helpers ----

    Task<TestUser> NewAdminAsync(string? password = null) => app.NewUserAsync(role: TeamRole.Admin, password: password);

    /// <summary>A member (not an admin) of the admin's team: the first user of a new team is always its admin.</summary>
    Task<TestUser> NewMemberAsync(TestUser admin) =>
        app.NewUserAsync(team: app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name), role: TeamRole.Member);

    /// <summary>Connect → Salesforce's authorize page (the fake approves) → the callback, in the admin's client.</summary>
    Task<(HttpResponseMessage Callback, Dictionary<string, string> AuthQuery)> ConsentAsync(TestUser user, string extra = "") =>
        ConsentAsync(user.Client, extra);

    /// <summary>The same through any client: one with the user's API token, or a browser signed in with the form (cookie).</summary>
    async Task<(HttpResponseMessage Callback, Dictionary<string, string> AuthQuery)> ConsentAsync(HttpClient client, string extra = "")
    {
        var connect = await client.GetAsync(SalesforceApi.ConnectPath);
        Assert.Equal(HttpStatusCode.Redirect, connect.StatusCode);
        var authUrl = connect.Headers.Location!;
        if (!authUrl.IsAbsoluteUri) return (connect, []);
        Assert.StartsWith(Sf.BaseUrl + "/services/oauth2/authorize", authUrl.AbsoluteUri);
        var query = QueryHelpers.ParseQuery(authUrl.Query).ToDictionary(k => k.Key, k => k.Value.ToString());
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var consent = await browser.GetAsync(authUrl.AbsoluteUri + extra);
        Assert.Equal(HttpStatusCode.Redirect, consent.StatusCode);
        var callback = await client.GetAsync(consent.Headers.Location!.PathAndQuery);
        return (callback, query);
    }

    async Task<Guid> ConnectWebAsync(TestUser admin)
    {
        var (callback, _) = await ConsentAsync(admin);
        Assert.Equal(HttpStatusCode.Redirect, callback.StatusCode);
        Assert.Equal("/salesforce?salesforce=connected", callback.Headers.Location!.OriginalString);
        return Connection(admin.TeamId)!.Id;
    }

    SalesforceConnection? Connection(Guid teamId) =>
        app.WithDb(db => db.SalesforceConnections.AsNoTracking().SingleOrDefault(c => c.TeamId == teamId));

    static OutboxPayload Payload(TestUser u, string type, string? recipient, string[]? recipients = null, string? from = null,
        string? excerpt = null, string subject = "Proposal", string? link = null, OutboxSummary? summary = null) =>
        new(type, new DateTimeOffset(2026, 11, 20, 15, 30, 0, TimeSpan.Zero), u.TeamId, u.Id, u.Email, Guid.NewGuid(), subject,
            new DateTimeOffset(2026, 11, 19, 9, 0, 0, TimeSpan.Zero), recipient, recipients ?? (recipient is null ? [] : [recipient]),
            link, null, from, excerpt, "human", null, summary ?? new OutboxSummary(0, 0, 0, false));

    static OutboxMessage Message(OutboxPayload p, string? key = null, int attempt = 1) =>
        new(Random.Shared.NextInt64(1, long.MaxValue), key ?? $"evt-{Guid.NewGuid():N}", attempt, p);

    async Task<DeliveryResult> DeliverAsync(Guid connectionId, OutboxMessage message)
    {
        using var scope = app.Services.CreateScope();
        var target = scope.ServiceProvider.GetRequiredKeyedService<IDeliveryTarget>("salesforce");
        Assert.Equal("salesforce", target.Kind);
        return await target.DeliverAsync(connectionId, message, CancellationToken.None);
    }

    static string Unique(string local, string domain = "encom.test") => $"{local}.{Guid.NewGuid():N}"[..(local.Length + 9)] + "@" + domain;

    async Task<JsonElement> PutSettingsAsync(TestUser admin, object settings)
    {
        var res = await admin.Client.PutAsJsonAsync("/api/salesforce", settings, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, $"PUT /api/salesforce: {(int)res.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    // ---- connecting ----

    [Fact]
    public async Task An_admin_connects_with_the_web_server_flow_and_the_refresh_token_is_kept_encrypted()
    {
        var admin = await NewAdminAsync();
        var (callback, query) = await ConsentAsync(admin);
        Assert.Equal("/salesforce?salesforce=connected", callback.Headers.Location!.OriginalString);
        Assert.Equal(FakeSalesforce.ClientId, query["client_id"]);
        Assert.Equal("code", query["response_type"]);
        Assert.Equal("api refresh_token", query["scope"]);
        Assert.EndsWith("/salesforce/callback", query["redirect_uri"]);
        Assert.False(string.IsNullOrEmpty(query["state"]));

        var c = Connection(admin.TeamId)!;
        Assert.Equal(SalesforceAuthKind.WebServer, c.AuthKind);
        Assert.Equal(SalesforceStatus.Active, c.Status);
        Assert.Equal(Sf.BaseUrl, c.InstanceUrl);
        Assert.Equal("admin@org.test", c.SalesforceUsername); // from the identity URL
        Assert.DoesNotContain("5Aep", c.ProtectedSecret); // the fake's refresh tokens start so
        Assert.True(c.LogSent && c.LogReplies && !c.LogOpens && !c.LogClicks);

        var view = await admin.Client.GetJsonAsync("/api/salesforce");
        Assert.True(view.GetProperty("connected").GetBoolean());
        Assert.Equal("active", view.GetProperty("status").GetString());
        Assert.Equal("web-server", view.GetProperty("authKind").GetString());
        Assert.Equal("skip", view.GetProperty("settings").GetProperty("unknownRecipients").GetString());
        Assert.DoesNotContain("protectedSecret", view.ToString(), StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_member_cannot_connect_and_a_callback_from_another_browser_is_refused()
    {
        var admin = await NewAdminAsync();
        var member = await NewMemberAsync(admin);
        var connect = await member.Client.GetAsync(SalesforceApi.ConnectPath);
        Assert.Equal("/salesforce?salesforce=admins-only", connect.Headers.Location!.OriginalString);

        var res = await admin.Client.GetAsync(SalesforceApi.ConnectPath);
        var auth = res.Headers.Location!;
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var consent = await browser.GetAsync(auth.AbsoluteUri);
        // Another admin's browser (no nonce cookie) brings the code back: nothing is exchanged.
        var other = await NewAdminAsync();
        var exchangesBefore = Sf.CodeExchanges;
        var callback = await other.Client.GetAsync(consent.Headers.Location!.PathAndQuery);
        Assert.Equal("/salesforce?salesforce=bad-state", callback.Headers.Location!.OriginalString);
        Assert.Equal(exchangesBefore, Sf.CodeExchanges);
        Assert.Null(Connection(other.TeamId));

        var denied = await ConsentAsync(admin, "&x_deny=1");
        Assert.Equal("/salesforce?salesforce=denied", denied.Callback.Headers.Location!.OriginalString);
        Assert.Null(Connection(admin.TeamId));
    }

    [Fact]
    public async Task A_connected_app_without_the_refresh_token_scope_is_not_kept()
    {
        var admin = await NewAdminAsync();
        Sf.GrantsRefreshToken = false;
        try
        {
            var (callback, _) = await ConsentAsync(admin);
            Assert.Equal("/salesforce?salesforce=no-refresh-token", callback.Headers.Location!.OriginalString);
            Assert.Null(Connection(admin.TeamId));
        }
        finally
        {
            Sf.GrantsRefreshToken = true;
        }
    }

    public static TheoryData<string> UnsafeInstanceUrls() =>
        ["http://na1.salesforce.example", "https://169.254.169.254", "https://10.0.0.5", "https://192.168.1.10:8443", "https://[fd00::1]",
         "https://[::ffff:169.254.169.254]", "https://user:pw@na1.salesforce.example", "file:///etc/passwd"];

    /// <summary>
    /// The access token goes to whatever instance_url the token endpoint names, on every REST call: plain http would
    /// hand it to anyone on the path, and a private or link-local address would point our server at its own network.
    /// </summary>
    [Theory]
    [MemberData(nameof(UnsafeInstanceUrls))]
    public async Task An_instance_url_that_is_not_https_on_a_public_host_is_refused_and_nothing_is_connected(string instanceUrl)
    {
        var admin = await app.NewJwtAdminAsync();
        Sf.InstanceUrlOverride = instanceUrl;
        try
        {
            var res = await admin.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { }, TestApi.Json);
            Assert.Equal(HttpStatusCode.UnprocessableEntity, res.StatusCode);
            Assert.Null(Connection(admin.TeamId));
        }
        finally
        {
            Sf.InstanceUrlOverride = null;
        }
    }

    /// <summary>
    /// The JWT bearer flow signs with the server's key, which every org that pre-authorises the connected app trusts
    /// for its pre-authorised users without asking them: a team admin naming the subject could connect their team as
    /// another team's (another org's) integration user, log into that org and learn its Contacts and Leads.
    /// </summary>
    [Fact]
    public async Task A_team_admin_cannot_choose_another_user_for_the_servers_JWT_than_the_configured_one()
    {
        const string othersUser = "integration@other-team-org.test";
        Sf.PreAuthorised.Add(othersUser);
        try
        {
            var admin = await app.NewJwtAdminAsync();
            var grants = Sf.JwtGrants;
            var res = await admin.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { username = othersUser }, TestApi.Json);
            Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
            Assert.Contains("Salesforce:JwtUsername", await res.Content.ReadAsStringAsync());
            Assert.Null(Connection(admin.TeamId));
            Assert.Equal(grants, Sf.JwtGrants);

            // Naming the configured user itself is what an empty request does.
            var same = await admin.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { username = SalesforceApp.JwtUser.ToUpperInvariant() }, TestApi.Json);
            Assert.Equal(HttpStatusCode.OK, same.StatusCode);
            Assert.Equal(SalesforceApp.JwtUser, Connection(admin.TeamId)!.SalesforceUsername);
        }
        finally
        {
            Sf.PreAuthorised.Remove(othersUser);
        }
    }

    [Fact]
    public async Task An_admin_connects_with_the_JWT_bearer_flow_as_a_pre_authorised_user()
    {
        var admin = await app.NewJwtAdminAsync();
        var before = Sf.JwtGrants;
        var res = await admin.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.OK, text);
        var view = JsonDocument.Parse(text).RootElement;
        Assert.Equal("jwt-bearer", view.GetProperty("authKind").GetString());
        Assert.Equal(SalesforceApp.JwtUser, view.GetProperty("username").GetString());
        Assert.Equal(before + 1, Sf.JwtGrants);

        // The configured user no longer pre-authorised: Salesforce's reason, no connection change.
        var other = await app.NewJwtAdminAsync();
        Sf.PreAuthorised.Remove(SalesforceApp.JwtUser);
        HttpResponseMessage refused;
        try
        {
            refused = await other.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { }, TestApi.Json);
        }
        finally
        {
            Sf.PreAuthorised.Add(SalesforceApp.JwtUser);
        }
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("hasn't approved this consumer", await refused.Content.ReadAsStringAsync());
        Assert.Null(Connection(other.TeamId));

        var member = await NewMemberAsync(admin);
        var forbidden = await member.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);

        // Deliveries through a JWT connection get new tokens by signing again.
        var contact = Sf.AddContact(Unique("jwt"));
        var email = Sf.All("Contact").Single(c => c.Id == contact)["Email"]!;
        var id = Connection(admin.TeamId)!.Id;
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
        Sf.ExpireSessions();
        var grants = Sf.JwtGrants;
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
        Assert.Equal(grants + 1, Sf.JwtGrants);
    }

    /// <summary>
    /// The JWT bearer flow acts as the one server-wide Salesforce:JwtUsername, in the org of the team(s) it was set up
    /// for. Any other team's admin binding their team to it would log their mail into that org and could use the
    /// delivery log as an oracle on its Contacts: only the teams Salesforce:JwtTeams names may connect with it.
    /// </summary>
    [Fact]
    public async Task Only_the_teams_Salesforce_JwtTeams_names_may_connect_as_the_servers_JWT_user()
    {
        var owner = await app.NewJwtAdminAsync();
        Assert.Equal(HttpStatusCode.OK, (await owner.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { }, TestApi.Json)).StatusCode);
        Assert.True((await owner.Client.GetJsonAsync("/api/salesforce")).GetProperty("jwtConfigured").GetBoolean());

        const string password = "Salesforce-Stranger1";
        var stranger = await NewAdminAsync(password); // another team on the same server, not named
        Assert.NotEqual(owner.TeamId, stranger.TeamId);
        var grants = Sf.JwtGrants;
        var res = await stranger.Client.PostAsJsonAsync("/api/salesforce/connect-jwt", new { }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(403, problem.GetProperty("status").GetInt32());
        Assert.Contains("Salesforce:JwtTeams", problem.GetProperty("detail").GetString());
        Assert.Null(Connection(stranger.TeamId));
        Assert.Equal(grants, Sf.JwtGrants);

        // The team is not offered the flow: not in the API's view, not on the page, and the page's form is refused too.
        Assert.False((await stranger.Client.GetJsonAsync("/api/salesforce")).GetProperty("jwtConfigured").GetBoolean());
        using var browser = await WebSignIn.SignInAsync(app, stranger.Email, password);
        var page = await browser.GetStringAsync("/salesforce");
        Assert.DoesNotContain("id=\"salesforce-connect-jwt\"", page);
        Assert.Contains("id=\"salesforce-connect-button\"", page);
        var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var posted = await browser.PostAsync("/salesforce?handler=Jwt", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["JwtUsername"] = "", ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.OK, posted.StatusCode);
        Assert.Contains("Salesforce:JwtTeams", await posted.Content.ReadAsStringAsync());
        Assert.Null(Connection(stranger.TeamId));
        Assert.Equal(grants, Sf.JwtGrants);
    }

    /// <summary>
    /// A JWT connection of a team Salesforce:JwtTeams does not name (made before the setting existed, or the team was
    /// taken off it) signs nothing more: it needs reconnecting, with the reason, and its events wait.
    /// </summary>
    [Fact]
    public async Task A_JWT_connection_of_a_team_JwtTeams_does_not_name_needs_reconnecting_and_signs_nothing()
    {
        var admin = await NewAdminAsync();
        var auth = app.Services.GetRequiredService<SalesforceAuth>();
        var connection = new SalesforceConnection
        {
            TeamId = admin.TeamId, ConnectedByUserId = admin.Id, InstanceUrl = Sf.BaseUrl, AuthKind = SalesforceAuthKind.JwtBearer,
            SalesforceUsername = SalesforceApp.JwtUser, ProtectedSecret = auth.Protect(new SalesforceSecret(null, SalesforceApp.JwtUser)),
            CreatedAt = DateTimeOffset.UtcNow,
        };
        await app.WithDbAsync(async db =>
        {
            db.SalesforceConnections.Add(connection);
            await db.SaveChangesAsync();
        });
        var email = Unique("oracle");
        var contact = Sf.AddContact(email);
        var grants = Sf.JwtGrants;
        var calls = Sf.DataCalls;

        var result = await DeliverAsync(connection.Id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.NeedsReconnect, result.Outcome);
        Assert.Contains("Salesforce:JwtTeams", result.Detail);
        var c = Connection(admin.TeamId)!;
        Assert.Equal(SalesforceStatus.NeedsReconnect, c.Status);
        Assert.Contains("Salesforce:JwtTeams", c.StatusMessage);
        Assert.Equal(grants, Sf.JwtGrants);
        Assert.Equal(calls, Sf.DataCalls);
        Assert.Empty(Sf.TasksFor(contact));

        // The Salesforce sign-in connects the team again, as its own user.
        Assert.Equal(connection.Id, await ConnectWebAsync(admin));
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(connection.Id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
        Assert.Single(Sf.TasksFor(contact));
    }

    // ---- delivering ----

    [Fact]
    public async Task A_sent_email_becomes_a_completed_Task_on_the_Contact_with_its_Account()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var account = Sf.AddAccount("Encom");
        var email = Unique("alan");
        var contact = Sf.AddContact(email, account);

        var p = Payload(admin, OutboxEventTypes.MessageSent, email.ToUpperInvariant(), summary: new OutboxSummary(2, 1, 3, false));
        var result = await DeliverAsync(id, Message(p));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);

        var task = Assert.Single(Sf.TasksFor(contact));
        Assert.Equal(result.ExternalId, task.Id);
        Assert.StartsWith("00T", task.Id);
        Assert.Equal("Email: Proposal", task["Subject"]);
        Assert.Equal(account, task["WhatId"]);
        Assert.Equal("Completed", task["Status"]);
        Assert.Equal("2026-11-19", task["ActivityDate"]);
        Assert.Contains($"Sent by {admin.Email}", task["Description"]);
        Assert.Contains("Tracking: 2 opens, 1 click, 3 pages read, no reply yet.", task["Description"]);
        Assert.False(string.IsNullOrEmpty(task[FakeSalesforce.KeyField]));
    }

    [Fact]
    public async Task By_default_the_Task_is_on_the_Account_even_with_one_open_Opportunity_and_none_is_looked_up()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var account = Sf.AddAccount("Encom");
        var email = Unique("alan");
        var contact = Sf.AddContact(email, account);
        Sf.AddContactRole(Sf.AddOpportunity(account), contact);
        var queries = Sf.Queries.Count;

        var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(account, Assert.Single(Sf.TasksFor(contact))["WhatId"]);
        Assert.Null(result.Detail);
        Assert.Single(Sf.Queries.Skip(queries)); // the Contact query only
    }

    [Fact]
    public async Task Through_the_outbox_a_sent_message_is_logged_by_the_worker_once_and_the_delivery_log_says_so()
    {
        var admin = await NewAdminAsync();
        await ConnectWebAsync(admin);
        var email = Unique("lora");
        var contact = Sf.AddContact(email, Sf.AddAccount("Encom"));
        var reg = await admin.Client.PostAsJsonAsync("/api/messages", new
        {
            from = admin.Email, subject = "Grid proposal", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { email }, html = "<p>Hi</p>",
        });
        Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
        // The Task exists in Salesforce a moment before the worker records its answer: wait for both.
        OutboxDelivery? Delivery() => app.WithDb(db => db.OutboxDeliveries.SingleOrDefault(d => d.TeamId == admin.TeamId && d.TargetKind == "salesforce"));
        var deadline = DateTime.UtcNow.AddSeconds(40);
        while (Sf.TasksFor(contact).Count == 0 || Delivery()?.State != DeliveryState.Delivered)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the outbox did not log the send in Salesforce (delivery: {Delivery()?.State}, {Delivery()?.LastError})");
            await Task.Delay(200);
        }
        var task = Assert.Single(Sf.TasksFor(contact));
        Assert.Equal("Email: Grid proposal", task["Subject"]);
        var delivery = Delivery()!;
        Assert.Equal(task.Id, delivery.ExternalId);
        Assert.Equal(delivery.IdempotencyKey, task[FakeSalesforce.KeyField]);
    }

    [Fact]
    public async Task While_Salesforce_is_down_sends_wait_in_the_outbox_and_each_is_logged_once_when_it_returns()
    {
        var admin = await NewAdminAsync();
        await ConnectWebAsync(admin);
        var people = Enumerable.Range(0, 3).Select(i => Unique($"p{i}")).ToList();
        var contacts = people.Select(p => Sf.AddContact(p)).ToList();
        await Sf.DownAsync();
        try
        {
            foreach (var p in people)
            {
                var reg = await admin.Client.PostAsJsonAsync("/api/messages", new
                {
                    from = admin.Email, subject = "During the outage", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { p }, html = "<p>Hi</p>",
                });
                Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
            }
            List<OutboxDelivery> Ours() => app.WithDb(db => db.OutboxDeliveries.Where(d => d.TeamId == admin.TeamId && d.TargetKind == "salesforce").ToList());
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(Ours().Count == 3 && Ours().All(d => d.Attempts >= 2)))
            {
                Assert.True(DateTime.UtcNow < deadline, "no failed attempts while Salesforce was down");
                await Task.Delay(200);
            }
            Assert.All(Ours(), d => Assert.Equal(DeliveryState.Pending, d.State));
        }
        finally
        {
            await Sf.UpAsync();
        }
        var until = DateTime.UtcNow.AddSeconds(30);
        while (contacts.Any(c => Sf.TasksFor(c).Count == 0))
        {
            Assert.True(DateTime.UtcNow < until, "the queued sends were not logged after Salesforce came back");
            await Task.Delay(200);
        }
        await Task.Delay(1000);
        Assert.All(contacts, c => Assert.Single(Sf.TasksFor(c)));
    }

    [Fact]
    public async Task A_message_to_several_people_is_logged_on_the_first_one_Salesforce_knows()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var known = Unique("lora");
        var contact = Sf.AddContact(known);
        var p = Payload(admin, OutboxEventTypes.MessageSent, null, recipients: [Unique("nobody"), known.ToUpperInvariant()]);
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(p))).Outcome);
        var task = Assert.Single(Sf.TasksFor(contact));
        Assert.Contains(known.ToUpperInvariant(), task["Description"]);
    }

    /// <summary>Runs <paramref name="body"/> against an org with Shared Activities (the fake is shared by the class's tests).</summary>
    async Task WithSharedActivitiesAsync(Func<Task> body)
    {
        Sf.SharedActivities = true;
        try
        {
            await body();
        }
        finally
        {
            Sf.SharedActivities = false;
        }
    }

    [Fact]
    public async Task Without_Shared_Activities_a_message_to_several_Contacts_stays_on_the_first_and_no_relation_is_sent()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var first = Unique("alan");
        var second = Unique("lora");
        var firstId = Sf.AddContact(first);
        var secondId = Sf.AddContact(second);
        var describes = Sf.Describes;

        var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: [first, second])));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        var task = Assert.Single(Sf.TasksFor(firstId));
        Assert.Empty(Sf.TasksFor(secondId));
        Assert.Null(task[FakeSalesforce.TaskWhoIds]);
        Assert.Empty(Sf.RelatedTo(task.Id));
        Assert.DoesNotContain("Not related", task["Description"]);
        Assert.Null(result.Detail);
        Assert.Equal(describes + 1, Sf.Describes);

        // The answer is remembered for the connection: the next message does not describe Task again.
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: [second, first])))).Outcome);
        Assert.Equal(describes + 1, Sf.Describes);
        Assert.Single(Sf.TasksFor(secondId));
    }

    [Fact]
    public Task With_Shared_Activities_a_message_to_several_Contacts_is_one_Task_related_to_each() => WithSharedActivitiesAsync(async () =>
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var account = Sf.AddAccount("Encom");
        var emails = new[] { Unique("alan"), Unique("lora"), Unique("ram") };
        var contacts = new[] { Sf.AddContact(emails[0], account), Sf.AddContact(emails[1]), Sf.AddContact(emails[2], Sf.AddAccount("Dillinger")) };
        var describes = Sf.Describes;

        // A message to one person does not need to know: no describe.
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, emails[0])))).Outcome);
        Assert.Equal(describes, Sf.Describes);

        var p = Payload(admin, OutboxEventTypes.MessageSent, null, recipients: [Unique("nobody"), emails[0].ToUpperInvariant(), emails[1], emails[2]]);
        var key = $"sent:{p.MessageId:N}";
        var result = await DeliverAsync(id, Message(p, key));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        Assert.Equal(describes + 1, Sf.Describes);
        var task = Sf.All("Task").Single(t => t.Id == result.ExternalId);
        Assert.Equal(contacts[0], task["WhoId"]);          // the first the event names is the primary contact
        Assert.Equal(account, task["WhatId"]);              // and its account the Task's
        Assert.Equal(contacts, Sf.RelatedTo(task.Id));
        Assert.All(contacts, c => Assert.Single(Sf.TasksRelatedTo(c), t => t.Id == task.Id));
        Assert.Equal("Related to 3 Contacts.", result.Detail);

        // A redelivery relates the same people again, on the same Task, and the describe is not repeated.
        var again = await DeliverAsync(id, Message(p, key, attempt: 2));
        Assert.Equal(task.Id, again.ExternalId);
        Assert.Equal(contacts, Sf.RelatedTo(task.Id));
        Assert.Equal(describes + 1, Sf.Describes);
    });

    [Fact]
    public Task With_Shared_Activities_a_Task_holds_one_Lead_or_up_to_50_Contacts_and_the_rest_are_named() => WithSharedActivitiesAsync(async () =>
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var people = Enumerable.Range(0, FakeSalesforce.MaxContactsPerTask + 2).Select(i => Unique($"c{i:D2}")).ToList();
        var contacts = people.Select(e => Sf.AddContact(e)).ToList();
        var lead = Unique("quorra", "grid.test");
        var leadId = Sf.AddLead(lead);
        var unknown = Enumerable.Range(0, 30).Select(i => Unique($"u{i:D2}")).ToList();

        // A lead first, contacts after, unknown people between: the contacts win, 50 of them, in the event's order.
        var queries = Sf.Queries.Count;
        var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: [lead, .. unknown, .. people])));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        var task = Sf.All("Task").Single(t => t.Id == result.ExternalId);
        Assert.Equal(contacts.Take(FakeSalesforce.MaxContactsPerTask), Sf.RelatedTo(task.Id));
        Assert.Equal(contacts[0], task["WhoId"]);
        Assert.Empty(Sf.TasksRelatedTo(leadId));
        var note = $"Not related to this Task (Salesforce relates a Task to one Lead or up to 50 Contacts): {people[50]}, {people[51]}, {lead}.";
        Assert.Contains(note, task["Description"]);
        Assert.Equal("Related to 50 Contacts. " + note, result.Detail);
        // 83 addresses, 50 a query: two for Contacts, one for the 31 that are no Contact's.
        Assert.Equal(3, Sf.Queries.Count - queries);

        // Leads only: the Task goes on the first, the other is named.
        var otherLead = Unique("yori", "grid.test");
        Sf.AddLead(otherLead);
        var leads = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: [Unique("nobody"), lead, otherLead])));
        Assert.Equal(DeliveryOutcome.Delivered, leads.Outcome);
        var leadTask = Sf.All("Task").Single(t => t.Id == leads.ExternalId);
        Assert.Equal(leadId, leadTask["WhoId"]);
        Assert.Null(leadTask["WhatId"]);
        Assert.Equal(new[] { leadId }, Sf.RelatedTo(leadTask.Id));
        Assert.Contains($"Not related to this Task (Salesforce relates a Task to one Lead or up to 50 Contacts): {otherLead}.", leadTask["Description"]);
    });

    [Fact]
    public Task A_limit_or_an_expired_session_while_describing_the_org_is_retried_and_nothing_is_lost() => WithSharedActivitiesAsync(async () =>
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var emails = new[] { Unique("alan"), Unique("lora") };
        var contacts = emails.Select(e => Sf.AddContact(e)).ToList();
        var message = Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: emails));

        var describes = Sf.Describes;
        Sf.FailNext(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", retryAfter: "7");
        var limited = await DeliverAsync(id, message);
        Assert.Equal(DeliveryOutcome.Limited, limited.Outcome);
        Assert.Contains("REQUEST_LIMIT_EXCEEDED", limited.Detail);
        Assert.Equal(TimeSpan.FromSeconds(7), limited.RetryAfter);
        Assert.Equal(describes + 1, Sf.Describes);
        Assert.Empty(Sf.TasksFor(contacts[0]));

        Sf.FailNext(503, "SERVER_UNAVAILABLE", "Down for maintenance.");
        Assert.Equal(DeliveryOutcome.Retry, (await DeliverAsync(id, message)).Outcome);

        Sf.ExpireSessions();
        var refreshes = Sf.RefreshGrants;
        var delivered = await DeliverAsync(id, message);
        Assert.Equal(DeliveryOutcome.Delivered, delivered.Outcome);
        Assert.Equal(refreshes + 1, Sf.RefreshGrants);
        Assert.Equal(contacts, Sf.RelatedTo(delivered.ExternalId!));
    });

    [Fact]
    public Task A_describe_Salesforce_refuses_outright_logs_on_the_first_person_as_before() => WithSharedActivitiesAsync(async () =>
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var emails = new[] { Unique("alan"), Unique("lora") };
        var contacts = emails.Select(e => Sf.AddContact(e)).ToList();
        Sf.FailNext(403, "INSUFFICIENT_ACCESS", "insufficient access rights on object id");
        var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: emails)));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        var task = Assert.Single(Sf.TasksFor(contacts[0]));
        Assert.Null(task[FakeSalesforce.TaskWhoIds]);
        Assert.Null(result.Detail);
    });

    [Fact]
    public Task When_the_org_refuses_TaskWhoIds_the_Task_goes_on_the_first_person_and_names_the_others() => WithSharedActivitiesAsync(async () =>
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var emails = new[] { Unique("alan"), Unique("lora"), Unique("ram") };
        var contacts = emails.Select(e => Sf.AddContact(e)).ToList();
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: emails)))).Outcome);

        // The describe said yes and is remembered; now the field is gone (INVALID_FIELD, as for an org without it).
        Sf.SharedActivities = false;
        var describes = Sf.Describes;
        var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: emails, subject: "Second")));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        var task = Sf.All("Task").Single(t => t.Id == result.ExternalId);
        Assert.Equal(contacts[0], task["WhoId"]);
        Assert.Null(task[FakeSalesforce.TaskWhoIds]);
        Assert.Contains($"Not related to this Task (Salesforce refused TaskWhoIds: No such column 'TaskWhoIds' on sobject of type Task): {emails[1]}, {emails[2]}.",
            task["Description"]);
        Assert.StartsWith("Related to 1 Contact. Not related to this Task (Salesforce refused TaskWhoIds", result.Detail);

        // What the org said is kept: the next message is logged on one person straight away, without a refused call.
        var calls = Sf.DataCalls;
        var next = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, null, recipients: emails, subject: "Third")));
        Assert.Equal(DeliveryOutcome.Delivered, next.Outcome);
        Assert.Equal(calls + 2, Sf.DataCalls); // the Contact query and the upsert
        Assert.Equal(describes, Sf.Describes);
    });

    [Fact]
    public async Task A_reply_becomes_a_Task_on_the_Lead_who_answered_without_a_WhatId()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var lead = Unique("quorra", "grid.test");
        var leadId = Sf.AddLead(lead);
        Sf.AddLead(Unique("converted", "grid.test"), converted: true);

        var p = Payload(admin, OutboxEventTypes.ReplyReceived, "someone-else@encom.test", from: lead,
            excerpt: "Thanks, let's talk on Tuesday.", subject: "Re: Proposal", summary: new OutboxSummary(1, 0, 0, true));
        var result = await DeliverAsync(id, Message(p));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        var task = Assert.Single(Sf.TasksFor(leadId));
        Assert.Equal("Reply: Re: Proposal", task["Subject"]);
        Assert.Null(task["WhatId"]);
        Assert.Contains("Thanks, let's talk on Tuesday.", task["Description"]);
        Assert.Contains("replied", task["Description"]);
        Assert.Equal("2026-11-20", task["ActivityDate"]);
    }

    [Fact]
    public async Task An_unknown_recipient_is_skipped_or_becomes_a_Lead_by_setting()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("kevin.flynn", "flynns-arcade.test");

        var skipped = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.Skipped, skipped.Outcome);
        Assert.Contains("No Contact or Lead", skipped.Detail);
        Assert.DoesNotContain(Sf.All("Lead"), l => l["Email"] == email);

        var view = await PutSettingsAsync(admin, new { unknownRecipients = "create-lead" });
        Assert.Equal("create-lead", view.GetProperty("settings").GetProperty("unknownRecipients").GetString());
        var created = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.Delivered, created.Outcome);
        var lead = Assert.Single(Sf.All("Lead"), l => l["Email"] == email);
        Assert.StartsWith("Kevin Flynn", lead["LastName"]);
        Assert.Equal("flynns-arcade", lead["Company"]);
        Assert.Single(Sf.TasksFor(lead.Id));

        // The next event about them finds the Lead: no second one.
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
        Assert.Single(Sf.All("Lead"), l => l["Email"] == email);
    }

    [Fact]
    public async Task Delivering_the_same_event_again_updates_its_Task_instead_of_making_a_second()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("ram");
        var contact = Sf.AddContact(email);
        var p = Payload(admin, OutboxEventTypes.MessageSent, email);
        var key = $"sent:{p.MessageId:N}:{email}";

        var first = await DeliverAsync(id, Message(p, key, attempt: 1));
        var second = await DeliverAsync(id, Message(p, key, attempt: 2));
        Assert.Equal(DeliveryOutcome.Delivered, first.Outcome);
        Assert.Equal(DeliveryOutcome.Delivered, second.Outcome);
        Assert.Equal(first.ExternalId, second.ExternalId);
        Assert.Equal(201, first.StatusCode);
        Assert.Equal(200, second.StatusCode);
        Assert.Single(Sf.TasksFor(contact));

        // An org whose key field is not Unique, with two Tasks for one key: dead, saying what to fix, nothing written.
        var dup = $"dup-{Guid.NewGuid():N}";
        Sf.AddTask(dup);
        Sf.AddTask(dup);
        var ambiguous = await DeliverAsync(id, Message(p, dup));
        Assert.Equal(DeliveryOutcome.Dead, ambiguous.Outcome);
        Assert.Equal(300, ambiguous.StatusCode);
        Assert.Contains("must be marked Unique", ambiguous.Detail);
        Assert.Single(Sf.TasksFor(contact));

        // A long key with characters an external id should not carry is hashed, the same way each time.
        var odd = "webhook/salesforce?" + new string('x', 200) + "/é";
        var a = await DeliverAsync(id, Message(p, odd));
        var b = await DeliverAsync(id, Message(p, odd));
        Assert.Equal(a.ExternalId, b.ExternalId);
        Assert.Equal(2, Sf.TasksFor(contact).Count);
    }

    [Fact]
    public async Task An_expired_access_token_is_refreshed_without_the_delivery_noticing()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("yori");
        var contact = Sf.AddContact(email);
        Sf.ExpireSessions();
        var before = Sf.RefreshGrants;

        var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.Delivered, result.Outcome);
        Assert.Equal(before + 1, Sf.RefreshGrants);
        Assert.Single(Sf.TasksFor(contact));
    }

    /// <summary>
    /// Salesforce's refresh token rotation (an OAuth policy of the connected app, which Salesforce recommends): each
    /// refresh answers a new refresh token and invalidates the one used. The new one must be stored, or the second
    /// session renewal (or any renewal after a restart) finds the connection dead.
    /// </summary>
    [Fact]
    public async Task With_refresh_token_rotation_each_renewal_stores_the_new_refresh_token_for_the_next()
    {
        Sf.RotatesRefreshTokens = true;
        try
        {
            var admin = await NewAdminAsync();
            var id = await ConnectWebAsync(admin);
            var email = Unique("rot");
            var contact = Sf.AddContact(email);
            var connected = Connection(admin.TeamId)!.ProtectedSecret;

            Sf.ExpireSessions(); // the first session timeout: a refresh with the stored token, which Salesforce rotates
            Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
            Assert.NotEqual(connected, Connection(admin.TeamId)!.ProtectedSecret);

            Sf.ExpireSessions(); // the second: the refresh must use the token the first one answered
            var second = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
            Assert.True(second.Outcome == DeliveryOutcome.Delivered,
                $"second renewal: {second.Outcome} ({second.Detail}); connection status {Connection(admin.TeamId)!.Status}");
            Assert.Equal(2, Sf.TasksFor(contact).Count);
            Assert.Equal(SalesforceStatus.Active, Connection(admin.TeamId)!.Status);
        }
        finally
        {
            Sf.RotatesRefreshTokens = false;
        }
    }

    /// <summary>
    /// Two instances renewing one connection's session: the one that read the credentials before the other rotated them
    /// gets invalid_grant for its spent refresh token. It reads the stored credentials again and goes on with them,
    /// rather than marking a working connection needs-reconnect; and its context does not write the credentials back.
    /// </summary>
    [Fact]
    public async Task A_refresh_token_another_instance_rotated_meanwhile_is_read_again_instead_of_needing_a_reconnect()
    {
        Sf.RotatesRefreshTokens = true;
        try
        {
            var admin = await NewAdminAsync();
            var id = await ConnectWebAsync(admin);
            var email = Unique("race");
            var contact = Sf.AddContact(email);
            // The other instance's view of the connection, read before this one renews the session.
            using var other = app.Services.CreateScope();
            var otherDb = other.ServiceProvider.GetRequiredService<AppDbContext>();
            var stale = await otherDb.SalesforceConnections.SingleAsync(c => c.Id == id);

            Sf.ExpireSessions();
            Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
            var rotated = Connection(admin.TeamId)!.ProtectedSecret;
            Assert.NotEqual(stale.ProtectedSecret, rotated);

            Sf.ExpireSessions();
            var found = await other.ServiceProvider.GetRequiredService<SalesforceClient>()
                .QueryAsync(stale, $"SELECT Id FROM Contact WHERE Email = {SalesforceClient.Literal(email)}", CancellationToken.None);
            Assert.Equal(contact, Assert.Single(found).Id);
            var now = Connection(admin.TeamId)!;
            Assert.Equal(SalesforceStatus.Active, now.Status);
            Assert.NotEqual(rotated, now.ProtectedSecret); // rotated again by the other instance's renewal, and stored
            Assert.Equal(now.ProtectedSecret, stale.ProtectedSecret);
            Assert.Equal(EntityState.Unchanged, otherDb.Entry(stale).State);

            // Both go on working.
            Sf.ExpireSessions();
            Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
            Assert.Equal(2, Sf.TasksFor(contact).Count);
        }
        finally
        {
            Sf.RotatesRefreshTokens = false;
        }
    }

    [Fact]
    public async Task A_revoked_refresh_token_marks_the_connection_needs_reconnect_until_an_admin_connects_again()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("dumont");
        var contact = Sf.AddContact(email);
        // Every refresh token of the fake goes (other tests connect anew, each with a team of its own).
        Sf.RevokeAllRefreshTokens();
        {
            var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
            Assert.Equal(DeliveryOutcome.NeedsReconnect, result.Outcome);
            Assert.Contains("invalid_grant", result.Detail);
            var c = Connection(admin.TeamId)!;
            Assert.Equal(SalesforceStatus.NeedsReconnect, c.Status);
            Assert.Contains("expired access/refresh token", c.StatusMessage);
            var view = await admin.Client.GetJsonAsync("/api/salesforce");
            Assert.Equal("needs-reconnect", view.GetProperty("status").GetString());

            // While it waits, nothing is sent to Salesforce.
            var calls = Sf.DataCalls;
            var grants = Sf.RefreshGrants;
            Assert.Equal(DeliveryOutcome.NeedsReconnect, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
            Assert.Equal(calls, Sf.DataCalls);
            Assert.Equal(grants, Sf.RefreshGrants);
        }

        // Reconnecting keeps the connection (its id, which waiting deliveries name) and its settings.
        Assert.Equal(id, await ConnectWebAsync(admin));
        Assert.Equal(SalesforceStatus.Active, Connection(admin.TeamId)!.Status);
        Assert.Null(Connection(admin.TeamId)!.StatusMessage);
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
        Assert.Single(Sf.TasksFor(contact));
    }

    /// <summary>
    /// Another server instance, with an access token of its own cached for the connection, while an admin connects
    /// the team again as another Salesforce user (or to another org): its next delivery acts as the new user, not as
    /// the old one until that session ends.
    /// </summary>
    [Fact]
    public async Task After_a_reconnect_as_another_user_another_instance_acts_as_the_new_user_at_once()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("lora");
        var contact = Sf.AddContact(email);
        // The other instance: its own token cache (SalesforceAuth is one per process), the same database.
        var otherAuth = ActivatorUtilities.CreateInstance<SalesforceAuth>(app.Services);
        async Task<DeliveryResult> DeliverOnOtherInstanceAsync()
        {
            using var scope = app.Services.CreateScope();
            var client = ActivatorUtilities.CreateInstance<SalesforceClient>(scope.ServiceProvider, otherAuth);
            var target = ActivatorUtilities.CreateInstance<SalesforceTarget>(scope.ServiceProvider, client, otherAuth);
            return await target.DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)), CancellationToken.None);
        }
        var mark = Sf.DataCallers.Count;
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverOnOtherInstanceAsync()).Outcome);
        Assert.All(Sf.DataCallers.Skip(mark), u => Assert.Equal("admin@org.test", u));

        var (callback, _) = await ConsentAsync(admin, "&x_user=ops@org.test");
        Assert.Equal("/salesforce?salesforce=connected", callback.Headers.Location!.OriginalString);
        Assert.Equal(id, Connection(admin.TeamId)!.Id);
        Assert.Equal("ops@org.test", Connection(admin.TeamId)!.SalesforceUsername);

        mark = Sf.DataCallers.Count;
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverOnOtherInstanceAsync()).Outcome);
        Assert.NotEmpty(Sf.DataCallers.Skip(mark));
        Assert.All(Sf.DataCallers.Skip(mark), u => Assert.Equal("ops@org.test", u));
        Assert.Equal(2, Sf.TasksFor(contact).Count);
    }

    /// <summary>
    /// invalid_client is about the server's consumer key and secret, not a team's grant: a wrong Salesforce:ClientSecret
    /// (or a secret renewed on the connected app) must not send every team to the Salesforce sign-in. Events wait, the
    /// operator is told, and once the setting is right again everything goes on by itself, connections an earlier version
    /// marked for it included.
    /// </summary>
    [Fact]
    public async Task A_wrong_client_secret_is_the_operators_to_fix_and_marks_no_connection_needs_reconnect()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("walter");
        var contact = Sf.AddContact(email);
        try
        {
            Sf.AcceptedClientSecret = "renewed-on-the-connected-app";
            Sf.ExpireSessions();
            var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
            Assert.Equal(DeliveryOutcome.NeedsReconnect, result.Outcome); // waits, using up no attempt
            Assert.Contains("Salesforce:ClientSecret", result.Detail);
            Assert.Equal(SalesforceStatus.Active, Connection(admin.TeamId)!.Status);
            Assert.Null(Connection(admin.TeamId)!.StatusMessage);
            Assert.True(app.Log.Has(LogLevel.Error, "invalid_client"), "the operator is told, as an error");

            // A connection that an earlier version marked needs-reconnect for this comes back too.
            app.WithDb(db => db.SalesforceConnections.Where(c => c.Id == id).ExecuteUpdate(u => u
                .SetProperty(c => c.Status, SalesforceStatus.NeedsReconnect)
                .SetProperty(c => c.StatusMessage, "Salesforce sign-in failed: invalid_client (invalid client credentials). An admin connects Salesforce again; events wait until then.")));
            Assert.Equal(DeliveryOutcome.NeedsReconnect, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
        }
        finally
        {
            Sf.AcceptedClientSecret = FakeSalesforce.ClientSecret;
        }
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)))).Outcome);
        Assert.Single(Sf.TasksFor(contact));
        Assert.Equal(SalesforceStatus.Active, Connection(admin.TeamId)!.Status);
        Assert.Null(Connection(admin.TeamId)!.StatusMessage);
    }

    [Fact]
    public async Task API_limits_wait_and_outages_are_retried_with_Salesforces_wait_when_it_gives_one()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("limit");
        var contact = Sf.AddContact(email);
        var p = Payload(admin, OutboxEventTypes.MessageSent, email);

        Sf.FailNext(429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.", retryAfter: "120");
        var limited = await DeliverAsync(id, Message(p));
        Assert.Equal(DeliveryOutcome.Limited, limited.Outcome);
        Assert.Equal(TimeSpan.FromSeconds(120), limited.RetryAfter);
        Assert.Equal(429, limited.StatusCode);

        Sf.FailNext(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.");
        // The daily limit comes without a Retry-After: the outbox waits it out without using up attempts.
        var daily = await DeliverAsync(id, Message(p));
        Assert.Equal(DeliveryOutcome.Limited, daily.Outcome);
        Assert.Null(daily.RetryAfter);
        Assert.Contains("TotalRequests Limit exceeded.", daily.Detail);

        Sf.Unavailable = true;
        try
        {
            var unavailable = await DeliverAsync(id, Message(p));
            Assert.Equal(DeliveryOutcome.Retry, unavailable.Outcome);
            Assert.Equal(503, unavailable.StatusCode);
        }
        finally
        {
            Sf.Unavailable = false;
        }

        // Salesforce's login is down just when the session must be renewed: try later, the connection stays active.
        Sf.ExpireSessions();
        Sf.LoginUnavailable = true;
        try
        {
            var login = await DeliverAsync(id, Message(p));
            Assert.Equal(DeliveryOutcome.Retry, login.Outcome);
            Assert.Contains("http_503", login.Detail);
        }
        finally
        {
            Sf.LoginUnavailable = false;
        }
        Assert.Equal(SalesforceStatus.Active, Connection(admin.TeamId)!.Status);

        await Sf.DownAsync();
        try
        {
            var down = await DeliverAsync(id, Message(p));
            Assert.Equal(DeliveryOutcome.Retry, down.Outcome);
            Assert.Contains("could not be reached", down.Detail);
        }
        finally
        {
            await Sf.UpAsync();
        }
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(p))).Outcome);
        Assert.Single(Sf.TasksFor(contact));
        Assert.Equal(SalesforceStatus.Active, Connection(admin.TeamId)!.Status);
    }

    [Fact]
    public async Task A_validation_rule_or_a_missing_field_is_dead_with_Salesforces_message()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("rinzler");
        var contact = Sf.AddContact(email);
        Sf.TaskValidationRule = t => t["Subject"]?.GetValue<string>().Contains("Confidential", StringComparison.Ordinal) == true
            ? "Tasks about confidential mail may not be logged." : null;
        try
        {
            var dead = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email, subject: "Confidential plans")));
            Assert.Equal(DeliveryOutcome.Dead, dead.Outcome);
            Assert.Equal(400, dead.StatusCode);
            Assert.Contains("FIELD_CUSTOM_VALIDATION_EXCEPTION: Tasks about confidential mail may not be logged.", dead.Detail);
        }
        finally
        {
            Sf.TaskValidationRule = null;
        }
        Assert.Empty(Sf.TasksFor(contact));

        // A Lead the org requires more of (here: its own required-field rule, queued): dead with the fields named.
        await PutSettingsAsync(admin, new { unknownRecipients = "create-lead" });
        Sf.FailNext(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Industry]");
        var missing = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, Unique("new"))));
        Assert.Equal(DeliveryOutcome.Dead, missing.Outcome);
        Assert.Contains("REQUIRED_FIELD_MISSING: Required fields are missing: [Industry]", missing.Detail);
    }

    [Fact]
    public async Task Addresses_are_escaped_in_SOQL_so_quotes_and_backslashes_cannot_change_the_query()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var obrien = $"o'brien.{Guid.NewGuid():N}"[..16] + "@encom.test";
        var contact = Sf.AddContact(obrien);
        Sf.AddContact("victim@encom.test");

        var found = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, obrien)));
        Assert.Equal(DeliveryOutcome.Delivered, found.Outcome);
        Assert.Single(Sf.TasksFor(contact));

        // A quote and a backslash meant to close the literal and widen the WHERE clause: read back as one address.
        var attack = @"x\'or'email'!='@evil.test";
        var before = Sf.Queries.Count;
        var result = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, attack)));
        Assert.Equal(DeliveryOutcome.Skipped, result.Outcome);
        Assert.Contains(attack.ToLowerInvariant(), Sf.QueryLiterals);
        Assert.All(Sf.Queries.Skip(before), q => Assert.Contains(@"'x\\\'or\'email\'!=\'@evil.test'", q));
        Assert.DoesNotContain(Sf.All("Task"), t => t["Description"]?.Contains("evil.test") == true);
    }

    [Fact]
    public async Task Opens_and_clicks_are_logged_as_small_Tasks_only_when_the_settings_say_so()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var email = Unique("tron");
        var contact = Sf.AddContact(email);

        var open = Payload(admin, OutboxEventTypes.MessageOpened, email, summary: new OutboxSummary(1, 0, 0, false));
        var skipped = await DeliverAsync(id, Message(open));
        Assert.Equal(DeliveryOutcome.Skipped, skipped.Outcome);
        Assert.Contains("does not log message.opened", skipped.Detail);
        Assert.Equal(DeliveryOutcome.Skipped, (await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.BounceReceived, email)))).Outcome);

        await PutSettingsAsync(admin, new { logOpens = true, logClicks = true });
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(open))).Outcome);
        var click = Payload(admin, OutboxEventTypes.LinkClicked, email, link: "https://encom.test/pricing", summary: new OutboxSummary(1, 1, 0, false));
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(click))).Outcome);
        var tasks = Sf.TasksFor(contact);
        Assert.Contains(tasks, t => t["Subject"] == "Opened: Proposal" && t["Description"]!.Contains("Tracking: 1 open, 0 clicks"));
        Assert.Contains(tasks, t => t["Subject"] == "Clicked: Proposal" && t["Description"]!.Contains("https://encom.test/pricing"));
        // A link followed inside a tracked document counts with the clicks.
        var followed = Payload(admin, OutboxEventTypes.DocumentLinkFollowed, email, link: "https://encom.test/terms") with { DocumentName = "Grid deck.pdf", Page = 4 };
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(followed))).Outcome);
        Assert.Contains(Sf.TasksFor(contact), t => t["Subject"] == "Followed a link: Proposal"
            && t["Description"]!.Contains("followed the link https://encom.test/terms on page 4 of the document Grid deck.pdf"));

        var c = Connection(admin.TeamId)!;
        Assert.True(c.LogOpens && c.LogClicks && c.LogSent && !c.LogBounces);

        // Bounces go on the address that bounced (not the mailer daemon); automatic replies on whoever sent them.
        await PutSettingsAsync(admin, new { logBounces = true, logAutoReplies = true });
        var bounce = Payload(admin, OutboxEventTypes.BounceReceived, email, from: "mailer-daemon@mx.encom.test") with { Reason = "550 5.1.1 user unknown" };
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(bounce))).Outcome);
        var auto = Payload(admin, OutboxEventTypes.AutoReplyReceived, "other@encom.test", from: email, excerpt: "I am out of the office until Monday.");
        Assert.Equal(DeliveryOutcome.Delivered, (await DeliverAsync(id, Message(auto))).Outcome);
        tasks = Sf.TasksFor(contact);
        Assert.Contains(tasks, t => t["Subject"] == "Bounce: Proposal" && t["Description"]!.Contains("550 5.1.1 user unknown"));
        Assert.Contains(tasks, t => t["Subject"] == "Auto-reply: Proposal" && t["Description"]!.Contains("out of the office"));
    }

    [Fact]
    public async Task Two_teams_on_one_server_choose_for_themselves_whether_Tasks_go_on_an_Opportunity()
    {
        // The server's Salesforce:RelateToOpportunity is off here. One team chooses Opportunities on its page, the other
        // does not choose: the same kind of Contact gets its Task on the Opportunity for the first, the Account for the second.
        const string password = "Salesforce-Opp1";
        var chooser = await NewAdminAsync(password);
        var chooserId = await ConnectWebAsync(chooser);
        var other = await NewAdminAsync();
        var otherId = await ConnectWebAsync(other);

        using var browser = await WebSignIn.SignInAsync(app, chooser.Email, password);
        var page = await browser.GetStringAsync("/salesforce");
        Assert.Contains("id=\"salesforce-relate-to-opportunity\"", page);
        Assert.Contains("this server&#x27;s default (now: the Account)", page);
        var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var res = await browser.PostAsync("/salesforce?handler=Settings", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Form.LogSent"] = "true", ["Form.LogReplies"] = "true", ["Form.UnknownRecipients"] = "Skip",
            ["Form.RelateToOpportunity"] = "WhenOneFits", ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.Equal(OpportunityRelation.WhenOneFits, Connection(chooser.TeamId)!.RelateToOpportunity);
        Assert.Equal(OpportunityRelation.ServerDefault, Connection(other.TeamId)!.RelateToOpportunity);
        var settings = (await chooser.Client.GetJsonAsync("/api/salesforce")).GetProperty("settings");
        Assert.Equal("when-one-fits", settings.GetProperty("relateToOpportunity").GetString());
        Assert.True(settings.GetProperty("relatesToOpportunity").GetBoolean());
        var otherSettings = (await other.Client.GetJsonAsync("/api/salesforce")).GetProperty("settings");
        Assert.Equal("server-default", otherSettings.GetProperty("relateToOpportunity").GetString());
        Assert.False(otherSettings.GetProperty("relatesToOpportunity").GetBoolean());

        var account = Sf.AddAccount("Encom");
        var email = Unique("alan");
        var contact = Sf.AddContact(email, account);
        var open = Sf.AddOpportunity(account);
        Sf.AddContactRole(open, contact);
        string? WhatOf(DeliveryResult r) => Sf.All("Task").Single(t => t.Id == r.ExternalId)["WhatId"];

        var chosen = await DeliverAsync(chooserId, Message(Payload(chooser, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.Delivered, chosen.Outcome);
        Assert.Equal(open, WhatOf(chosen));
        var queries = Sf.Queries.Count;
        var unchosen = await DeliverAsync(otherId, Message(Payload(other, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.Delivered, unchosen.Outcome);
        Assert.Equal(account, WhatOf(unchosen));
        Assert.DoesNotContain(Sf.Queries.Skip(queries), q => q.Contains("Opportunity", StringComparison.Ordinal));

        // Through the API: the choice goes back to the server's default, and a bad value is a clear 400 that changes nothing.
        var bad = await chooser.Client.PutAsync("/api/salesforce", new StringContent("{\"relateToOpportunity\":7}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("server-default, when-one-fits or never", await bad.Content.ReadAsStringAsync());
        Assert.Equal(OpportunityRelation.WhenOneFits, Connection(chooser.TeamId)!.RelateToOpportunity);
        var back = await PutSettingsAsync(chooser, new { relateToOpportunity = "server-default" });
        Assert.False(back.GetProperty("settings").GetProperty("relatesToOpportunity").GetBoolean());
        var again = await DeliverAsync(chooserId, Message(Payload(chooser, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(account, WhatOf(again));
    }

    [Fact]
    public async Task Settings_are_for_admins_and_bad_input_is_a_clear_400()
    {
        var admin = await NewAdminAsync();
        await ConnectWebAsync(admin);
        var bad = await admin.Client.PutAsync("/api/salesforce", new StringContent("{\"unknownRecipients\":\"invent-a-contact\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var notJson = await admin.Client.PutAsync("/api/salesforce", new StringContent("{", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);

        var member = await NewMemberAsync(admin);
        var view = await member.Client.GetJsonAsync("/api/salesforce");
        Assert.True(view.GetProperty("connected").GetBoolean());
        Assert.True(view.GetProperty("webFlowConfigured").GetBoolean());
        Assert.False((await (await NewAdminAsync()).Client.GetJsonAsync("/api/salesforce")).GetProperty("connected").GetBoolean());
        var put = await member.Client.PutAsJsonAsync("/api/salesforce", new { logOpens = true }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Forbidden, put.StatusCode);
        var delete = await member.Client.DeleteAsync("/api/salesforce");
        Assert.Equal(HttpStatusCode.Forbidden, delete.StatusCode);

        var otherAdmin = await NewAdminAsync();
        var notConnected = await otherAdmin.Client.PutAsJsonAsync("/api/salesforce", new { logOpens = true }, TestApi.Json);
        Assert.Equal(HttpStatusCode.NotFound, notConnected.StatusCode);
    }

    [Fact]
    public async Task Events_of_another_team_or_for_a_removed_connection_are_not_delivered()
    {
        var admin = await NewAdminAsync();
        var id = await ConnectWebAsync(admin);
        var stranger = await app.NewUserAsync();
        var email = Unique("sark");
        Sf.AddContact(email);

        var foreign = await DeliverAsync(id, Message(Payload(stranger, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.Dead, foreign.Outcome);

        var noAddress = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, "not an address")));
        Assert.Equal(DeliveryOutcome.Skipped, noAddress.Outcome);

        var delete = await admin.Client.DeleteAsync("/api/salesforce");
        Assert.Equal(HttpStatusCode.NoContent, delete.StatusCode);
        Assert.Null(Connection(admin.TeamId));
        Assert.NotEmpty(Sf.Revoked);
        var gone = await DeliverAsync(id, Message(Payload(admin, OutboxEventTypes.MessageSent, email)));
        Assert.Equal(DeliveryOutcome.Skipped, gone.Outcome);
    }

    [Fact]
    public async Task The_page_shows_the_connect_button_then_the_state_and_settings()
    {
        const string password = "Salesforce-Page1";
        var admin = await app.NewJwtAdminAsync(password);
        using var browser = await WebSignIn.SignInAsync(app, admin.Email, password);
        var page = await browser.GetStringAsync("/salesforce");
        Assert.Contains("id=\"salesforce-not-connected\"", page);
        Assert.Contains("id=\"salesforce-connect-button\"", page);
        Assert.Contains("id=\"salesforce-connect-jwt\"", page);

        // Connect from the signed-in browser (the sign-in cookie, not an API token), as an admin does.
        var (callback, _) = await ConsentAsync(browser);
        Assert.Equal("/salesforce?salesforce=connected", callback.Headers.Location!.OriginalString);
        page = await browser.GetStringAsync(callback.Headers.Location!.OriginalString);
        Assert.Contains("Salesforce is connected.", page);
        Assert.Contains("id=\"salesforce-active\"", page);
        Assert.Contains("id=\"salesforce-settings\"", page);
        Assert.Contains(Sf.BaseUrl, page);

        // The settings form saves (antiforgery token from the page).
        var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var res = await browser.PostAsync("/salesforce?handler=Settings", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Form.LogSent"] = "true", ["Form.LogReplies"] = "true", ["Form.LogBounces"] = "true", ["Form.UnknownRecipients"] = "CreateLead",
            ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var c = Connection(admin.TeamId)!;
        Assert.True(c.LogBounces);
        Assert.False(c.LogOpens);
        Assert.Equal(UnknownRecipientPolicy.CreateLead, c.UnknownRecipients);
    }

    [Fact]
    public async Task The_page_connects_with_the_JWT_flow_and_members_see_the_state_without_the_controls()
    {
        const string password = "Salesforce-Page2";
        var admin = await app.NewJwtAdminAsync(password);
        using var browser = await WebSignIn.SignInAsync(app, admin.Email, password);
        var page = await browser.GetStringAsync("/salesforce");
        var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;

        var refused = await browser.PostAsync("/salesforce?handler=Jwt", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["JwtUsername"] = "stranger@org.test", ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.OK, refused.StatusCode);
        Assert.Contains("Salesforce:JwtUsername", await refused.Content.ReadAsStringAsync());
        Assert.Null(Connection(admin.TeamId));

        var res = await browser.PostAsync("/salesforce?handler=Jwt", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["JwtUsername"] = "", ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        Assert.Equal(SalesforceApp.JwtUser, Connection(admin.TeamId)!.SalesforceUsername);

        const string memberPassword = "Salesforce-Page3";
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName, role: TeamRole.Member, password: memberPassword);
        using var memberBrowser = await WebSignIn.SignInAsync(app, member.Email, memberPassword);
        var memberPage = await memberBrowser.GetStringAsync("/salesforce");
        Assert.Contains("id=\"salesforce-active\"", memberPage);
        Assert.Contains("id=\"salesforce-admins-only\"", memberPage);
        Assert.DoesNotContain("salesforce-settings", memberPage);
        Assert.DoesNotContain("salesforce-disconnect", memberPage);
    }
}

public sealed class SalesforceConnectorOnSqlite(SalesforceSqliteApp app) : SalesforceConnectorTests(app), IClassFixture<SalesforceSqliteApp>;

public sealed class SalesforceConnectorOnPostgres(SalesforcePostgresApp app) : SalesforceConnectorTests(app), IClassFixture<SalesforcePostgresApp>;
