using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Outlook;

/// <summary>Microsoft access tokens on /api/*: the task pane's way in, beside API tokens and the cookie.</summary>
public sealed class MicrosoftSignInTests(OutlookSqliteApp app) : IClassFixture<OutlookSqliteApp>
{
    static object Message(string from) => new
    {
        from, subject = "Hello", to = new[] { "alan@encom.test" }, html = "<p>Hi <a href=\"https://encom.test/deck\">deck</a></p>",
        perRecipient = false, source = "outlook-addin",
    };

    int MessageCount(Guid userId) => app.WithDb(db => db.Messages.Count(m => m.UserId == userId));

    [Fact]
    public async Task A_valid_token_for_a_users_address_acts_as_that_user_on_the_existing_api()
    {
        var user = await app.NewUserAsync();
        var client = app.AsMicrosoftUser(user.Email);

        var me = await client.GetJsonAsync("/api/me");
        Assert.Equal(user.Id, me.GetProperty("id").GetGuid());
        Assert.Equal(user.TeamId, me.GetProperty("teamId").GetGuid());

        var res = await client.PostAsJsonAsync("/api/messages", Message(user.Email), TestApi.Json);
        Assert.Equal(HttpStatusCode.Created, res.StatusCode);
        Assert.Equal(1, MessageCount(user.Id));
        Assert.Equal("outlook-addin", (await client.GetJsonAsync("/api/messages"))[0].GetProperty("source").GetString());

        // The personal API token keeps working beside it.
        Assert.Equal(HttpStatusCode.OK, (await user.Client.GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task An_alias_or_the_upn_claim_names_the_user_too_and_case_does_not_matter()
    {
        var user = await app.NewUserAsync();
        var alias = $"alias-{Guid.NewGuid():N}"[..14] + "@sender.test";
        // An alias verified as the user's (as the Gmail link page does); a plain alias does not sign in (see below).
        using (var scope = app.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<EmailTracking.Server.Accounts.AccountService>().LinkVerifiedAddressAsync(user.Id, alias);

        var byAlias = await app.AsMicrosoftUser(alias.ToUpperInvariant()).GetJsonAsync("/api/me");
        Assert.Equal(user.Id, byAlias.GetProperty("id").GetGuid());
        // (That account is now bound to the user: another user for the upn claim.)
        var other = await app.NewUserAsync();
        var byUpn = await app.AsMicrosoftUser(other.Email, new TestIssuer.TokenSpec { AddressClaim = "upn" }).GetJsonAsync("/api/me");
        Assert.Equal(other.Id, byUpn.GetProperty("id").GetGuid());
    }

    /// <summary>
    /// Microsoft documents preferred_username and upn as changeable; the tenant and object ids are not. The first
    /// sign-in binds the account to the user it names; afterwards the account is that user whatever its name.
    /// </summary>
    [Fact]
    public async Task The_account_is_bound_at_its_first_sign_in_and_keeps_its_user_when_its_name_changes()
    {
        var user = await app.NewUserAsync();
        Assert.Equal(user.Id, (await app.AsMicrosoftUser(user.Email).GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
        var login = Assert.Single(app.WithDb(db => db.UserLogins.Where(l => l.UserId == user.Id && l.LoginProvider != AccountService.VerifiedAddressProvider).ToList()));
        Assert.Equal("Microsoft", login.LoginProvider);
        Assert.Equal($"{TestIssuer.TenantId}/{TestIssuer.StableObjectId(TestIssuer.TenantId, user.Email)}".ToLowerInvariant(), login.ProviderKey);

        // The same account, renamed to an address that is no user's.
        var renamed = $"renamed-{Guid.NewGuid():N}"[..16] + "@corp.test";
        var spec = new TestIssuer.TokenSpec { Extra = { ["oid"] = TestIssuer.StableObjectId(TestIssuer.TenantId, user.Email) } };
        Assert.Equal(user.Id, (await app.AsMicrosoftUser(renamed, spec).GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
    }

    /// <summary>
    /// Another account that comes to carry a bound user's address (renamed to it in another tenant, or deleted and made
    /// again) is not that user: refused, saying how an admin unlinks the old one; after `et users unlink-microsoft` the
    /// next account to sign in with the address is bound.
    /// </summary>
    [Fact]
    public async Task Another_account_with_a_bound_users_address_is_refused_until_an_admin_unlinks_it()
    {
        var user = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.OK, (await app.AsMicrosoftUser(user.Email).GetAsync("/api/me")).StatusCode);

        var impostor = new TestIssuer.TokenSpec { Tenant = TestIssuer.OtherTenantId };
        var res = await app.AsMicrosoftUser(user.Email, impostor).GetAsync("/api/outlook/me");
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("linked-elsewhere", problem.GetProperty("reason").GetString());
        Assert.Contains($"et users unlink-microsoft --email {user.Email}", problem.GetProperty("detail").GetString());
        var post = await app.AsMicrosoftUser(user.Email, impostor).PostAsJsonAsync("/api/messages", Message(user.Email), TestApi.Json);
        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        Assert.Equal(0, MessageCount(user.Id));

        var settings = new Dictionary<string, string> { ["Database__Provider"] = app.Provider, ["ConnectionStrings__Default"] = app.ConnectionString };
        var dir = Directory.CreateTempSubdirectory("et-cli-").FullName;
        var (code, _, stderr) = await ServerProcess.RunCliAsync(dir, settings, "users", "unlink-microsoft", "--email", user.Email);
        Assert.True(code == 0, stderr);
        Assert.Contains("Unlinked", stderr);

        Assert.Equal(user.Id, (await app.AsMicrosoftUser(user.Email, impostor).GetJsonAsync("/api/me")).GetProperty("id").GetGuid());
        // And now the first account is the one refused.
        Assert.Equal(HttpStatusCode.Forbidden, (await app.AsMicrosoftUser(user.Email).GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task Tokens_from_another_organisations_tenant_are_accepted_when_the_server_is_multi_tenant()
    {
        var user = await app.NewUserAsync();
        var me = await app.AsMicrosoftUser(user.Email, new TestIssuer.TokenSpec { Tenant = TestIssuer.OtherTenantId }).GetJsonAsync("/api/me");
        Assert.Equal(user.Id, me.GetProperty("id").GetGuid());
    }

    public static TheoryData<string> Refusals() => ["audience", "issuer-of-another-tenant", "issuer-elsewhere", "expired", "not-yet-valid", "unsigned",
        "tampered", "forged-key", "no-scope", "garbage"];

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Invalid_tokens_are_refused_with_401_and_change_nothing(string what)
    {
        var user = await app.NewUserAsync();
        var other = await app.NewUserAsync();
        using var forger = RSA.Create(2048);
        var token = what switch
        {
            "audience" => app.Issuer.MintAccessToken(user.Email, new TestIssuer.TokenSpec { Audience = Guid.NewGuid().ToString() }),
            // Signed by the right key, but iss names a tenant other than the token's tid.
            "issuer-of-another-tenant" => app.Issuer.MintAccessToken(user.Email, new TestIssuer.TokenSpec { Issuer = app.Issuer.IssuerFor(TestIssuer.OtherTenantId) }),
            "issuer-elsewhere" => app.Issuer.MintAccessToken(user.Email, new TestIssuer.TokenSpec { Issuer = $"https://login.evil.test/{TestIssuer.TenantId}/v2.0" }),
            "expired" => app.Issuer.MintAccessToken(user.Email, new TestIssuer.TokenSpec { IssuedAt = DateTimeOffset.UtcNow.AddHours(-3), Lifetime = TimeSpan.FromHours(1) }),
            "not-yet-valid" => app.Issuer.MintAccessToken(user.Email, new TestIssuer.TokenSpec { IssuedAt = DateTimeOffset.UtcNow.AddHours(1) }),
            "unsigned" => app.Issuer.MintUnsigned(user.Email),
            "tampered" => app.Issuer.MintTampered(other.Email, user.Email),
            "forged-key" => app.Issuer.MintAccessToken(user.Email, new TestIssuer.TokenSpec { ForgedWith = forger }),
            // Identity.Web refuses a token with neither scp nor roles.
            "no-scope" => app.Issuer.MintAccessToken(user.Email, new TestIssuer.TokenSpec { Scope = null }),
            "garbage" => "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        var client = app.WithBearer(token);

        var me = await client.GetAsync("/api/me");
        Assert.Equal(HttpStatusCode.Unauthorized, me.StatusCode);
        var post = await client.PostAsJsonAsync("/api/messages", Message(user.Email), TestApi.Json);
        Assert.Equal(HttpStatusCode.Unauthorized, post.StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/outlook/me")).StatusCode);
        Assert.Equal(0, MessageCount(user.Id));
    }

    [Fact]
    public async Task A_token_without_our_scope_gets_403_saying_which_scope()
    {
        var user = await app.NewUserAsync();
        var client = app.AsMicrosoftUser(user.Email, new TestIssuer.TokenSpec { Scope = "User.Read Mail.Read" });

        var res = await client.PostAsJsonAsync("/api/messages", Message(user.Email), TestApi.Json);
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Contains("access_as_user", problem.GetProperty("detail").GetString());
        Assert.Equal("scope-missing", problem.GetProperty("reason").GetString());
        Assert.Equal(0, MessageCount(user.Id));
    }

    /// <summary>
    /// Anyone may add any address as an alias (POST /api/me/addresses verifies nothing): had an alias named the user for
    /// a Microsoft token, one user could claim a colleague's or another team's address before them, and that person's
    /// Outlook add-in would then sign in as the claimant, whose account would collect the victim's tracked mail.
    /// </summary>
    [Fact]
    public async Task An_address_someone_merely_added_as_an_alias_does_not_sign_its_real_owner_in_as_them()
    {
        var squatter = await app.NewUserAsync();
        var victim = $"victim-{Guid.NewGuid():N}"[..15] + "@corp.test";
        Assert.Equal(HttpStatusCode.NoContent, (await squatter.Client.PostAsJsonAsync("/api/me/addresses", new { address = victim })).StatusCode);

        var client = app.AsMicrosoftUser(victim);
        var me = await client.GetAsync("/api/me");
        Assert.Equal(HttpStatusCode.Forbidden, me.StatusCode);
        Assert.Equal("not-linked", JsonDocument.Parse(await me.Content.ReadAsStringAsync()).RootElement.GetProperty("reason").GetString());
        var post = await client.PostAsJsonAsync("/api/messages", Message(victim), TestApi.Json);
        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        Assert.Equal(0, MessageCount(squatter.Id));
    }

    [Fact]
    public async Task An_unknown_address_gets_403_saying_how_to_add_it()
    {
        var client = app.AsMicrosoftUser("nobody-here@elsewhere.test");
        var res = await client.GetAsync("/api/outlook/me");
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var detail = problem.GetProperty("detail").GetString()!;
        Assert.Contains("nobody-here@elsewhere.test", detail);
        Assert.Contains("et users add", detail);
        // For the add-in's panes, which tell the person what to do.
        Assert.Equal("not-linked", problem.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task An_unverified_email_claim_does_not_name_a_user_but_a_verified_one_does()
    {
        var user = await app.NewUserAsync();
        // Entra lets users edit `email`; only with xms_edov (domain verified by the tenant) may it name someone.
        var spec = new TestIssuer.TokenSpec { AddressClaim = "email" };
        Assert.Equal(HttpStatusCode.Forbidden, (await app.AsMicrosoftUser(user.Email, spec).GetAsync("/api/me")).StatusCode);
        var verified = spec with { Extra = new Dictionary<string, object> { ["xms_edov"] = true } };
        Assert.Equal(HttpStatusCode.OK, (await app.AsMicrosoftUser(user.Email, verified).GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task The_feed_accepts_a_microsoft_token()
    {
        var user = await app.NewUserAsync();
        var client = app.AsMicrosoftUser(user.Email);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/feed?after=0");
        using var res = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("text/event-stream", res.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Config_names_the_client_the_authority_and_the_scope()
    {
        var config = await app.Anonymous().GetJsonAsync("/api/outlook/config");
        Assert.Equal(TestIssuer.ClientId, config.GetProperty("clientId").GetString());
        Assert.Equal(app.Issuer.Instance + "common", config.GetProperty("authority").GetString());
        Assert.Equal([$"api://localhost/{TestIssuer.ClientId}/access_as_user"],
            config.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
    }
}

/// <summary>Without AzureAd:ClientId, Microsoft sign-in is off: a JWT is just an unknown bearer token.</summary>
public sealed class MicrosoftSignInOffTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Config_is_404_and_a_jwt_is_refused()
    {
        var res = await app.Anonymous().GetAsync("/api/outlook/config");
        Assert.Equal(HttpStatusCode.NotFound, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);

        await using var issuer = await TestIssuer.StartAsync();
        var user = await app.NewUserAsync();
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new("Bearer", issuer.MintAccessToken(user.Email));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/api/me")).StatusCode);
    }
}

public sealed class SingleTenantSignInTests(OutlookSingleTenantApp app) : IClassFixture<OutlookSingleTenantApp>
{
    [Fact]
    public async Task Only_the_configured_tenants_tokens_are_accepted()
    {
        var user = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.OK, (await app.AsMicrosoftUser(user.Email).GetAsync("/api/me")).StatusCode);
        // Another organisation's token, valid in every other way, names another issuer.
        var other = app.AsMicrosoftUser(user.Email, new TestIssuer.TokenSpec { Tenant = TestIssuer.OtherTenantId });
        Assert.Equal(HttpStatusCode.Unauthorized, (await other.GetAsync("/api/me")).StatusCode);
    }
}

public sealed class AllowedTenantsSignInTests(OutlookAllowedTenantsApp app) : IClassFixture<OutlookAllowedTenantsApp>
{
    [Fact]
    public async Task A_tenant_not_on_the_list_gets_403_saying_so()
    {
        var user = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.OK, (await app.AsMicrosoftUser(user.Email).GetAsync("/api/me")).StatusCode);
        var res = await app.AsMicrosoftUser(user.Email, new TestIssuer.TokenSpec { Tenant = TestIssuer.OtherTenantId }).GetAsync("/api/me");
        Assert.Equal(HttpStatusCode.Forbidden, res.StatusCode);
        var text = await res.Content.ReadAsStringAsync();
        Assert.Contains("AllowedTenants", text);
        Assert.Equal("tenant-not-allowed", JsonDocument.Parse(text).RootElement.GetProperty("reason").GetString());
    }
}
