using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Salesforce;

/// <summary>
/// What is logged to Salesforce. <see cref="RelateToOpportunity"/> is the team's choice (server-default when it has not
/// chosen); <see cref="RelatesToOpportunity"/> is what applies, the server's <c>Salesforce:RelateToOpportunity</c> for a
/// team that has not chosen.
/// </summary>
public sealed record SalesforceSettings(bool LogSent, bool LogReplies, bool LogOpens, bool LogClicks, bool LogAutoReplies, bool LogBounces,
    UnknownRecipientPolicy UnknownRecipients, OpportunityRelation RelateToOpportunity, bool RelatesToOpportunity);

/// <summary>A change to the settings: what is left out stays as it is.</summary>
public sealed record SalesforceSettingsRequest(bool? LogSent, bool? LogReplies, bool? LogOpens, bool? LogClicks, bool? LogAutoReplies, bool? LogBounces,
    UnknownRecipientPolicy? UnknownRecipients, OpportunityRelation? RelateToOpportunity = null);

/// <summary>The team's connection as the page and GET /api/salesforce show it (never the secret).</summary>
public sealed record SalesforceView(bool Connected, bool WebFlowConfigured, bool JwtConfigured, Guid? Id, string? InstanceUrl,
    SalesforceAuthKind? AuthKind, string? Username, SalesforceStatus? Status, string? StatusMessage, DateTimeOffset? ConnectedAt,
    SalesforceSettings? Settings);

/// <summary>Connecting, showing, configuring and disconnecting a team's Salesforce org.</summary>
public sealed class SalesforceService(AppDbContext db, SalesforceAuth auth, TimeProvider clock, ILogger<SalesforceService> log)
{
    public Task<SalesforceConnection?> FindAsync(Guid teamId, CancellationToken ct) =>
        db.SalesforceConnections.FirstOrDefaultAsync(c => c.TeamId == teamId, ct);

    /// <summary>The team's connection as shown; the JWT bearer flow counts as configured only for a team it may serve.</summary>
    public async Task<SalesforceView> ViewAsync(Guid teamId, CancellationToken ct) =>
        View(await FindAsync(teamId, ct), auth.Options.JwtConfigured && await JwtAllowedAsync(db, auth.Options, teamId, ct));

    public SalesforceView View(SalesforceConnection? c, bool jwtConfigured) => c is null
        ? new SalesforceView(false, auth.Options.WebFlowConfigured, jwtConfigured, null, null, null, null, null, null, null, null)
        : new SalesforceView(true, auth.Options.WebFlowConfigured, jwtConfigured, c.Id, c.InstanceUrl, c.AuthKind, c.SalesforceUsername,
            c.Status, c.StatusMessage, c.CreatedAt, Settings(c, auth.Options));

    /// <summary>Whether <c>Salesforce:JwtTeams</c> names the team: only such a team may act as the server's JWT user.</summary>
    public static async Task<bool> JwtAllowedAsync(AppDbContext db, SalesforceOptions o, Guid teamId, CancellationToken ct)
    {
        if (o.JwtTeams.Length == 0) return false;
        var name = await db.Teams.Where(t => t.Id == teamId).Select(t => t.Name).FirstOrDefaultAsync(ct);
        return name is not null && o.JwtAllows(teamId, name);
    }

    public static SalesforceSettings Settings(SalesforceConnection c, SalesforceOptions server) =>
        new(c.LogSent, c.LogReplies, c.LogOpens, c.LogClicks, c.LogAutoReplies, c.LogBounces, c.UnknownRecipients,
            c.RelateToOpportunity, RelatesToOpportunity(c, server));

    /// <summary>The team's choice, or the server's setting for a team that has not chosen.</summary>
    public static bool RelatesToOpportunity(SalesforceConnection c, SalesforceOptions server) => c.RelateToOpportunity switch
    {
        OpportunityRelation.WhenOneFits => true,
        OpportunityRelation.Never => false,
        _ => server.RelateToOpportunity,
    };

    /// <summary>
    /// Keeps a new grant for the team: a reconnect replaces the credentials of the existing connection (its settings and
    /// its id, which the outbox's waiting deliveries name, stay) and makes it active again.
    /// </summary>
    public Task<SalesforceConnection> SaveAsync(CurrentUser admin, SalesforceAuthKind kind, SalesforceSecret secret, SalesforceTokenResponse token,
        string? username, CancellationToken ct) => SaveAsync(admin, kind, secret, token, username, retried: false, ct);

    async Task<SalesforceConnection> SaveAsync(CurrentUser admin, SalesforceAuthKind kind, SalesforceSecret secret, SalesforceTokenResponse token,
        string? username, bool retried, CancellationToken ct)
    {
        var c = await FindAsync(admin.TeamId, ct);
        if (c is null)
        {
            c = new SalesforceConnection { TeamId = admin.TeamId, InstanceUrl = "", ProtectedSecret = "", CreatedAt = clock.GetUtcNow() };
            db.SalesforceConnections.Add(c);
        }
        c.ConnectedByUserId = admin.Id;
        c.AuthKind = kind;
        c.InstanceUrl = token.InstanceUrl!.TrimEnd('/');
        c.SalesforceUsername = username;
        // A grant of its own: other instances that cached a session of the credentials replaced see that they changed.
        secret = secret with { Grant = Guid.NewGuid() };
        c.ProtectedSecret = auth.Protect(secret);
        c.Status = SalesforceStatus.Active;
        c.StatusMessage = null;
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException) when (!retried && db.Entry(c).State == EntityState.Added)
        {
            // Two connects for the team at once: the other made the connection; this grant replaces its credentials.
            db.ChangeTracker.Clear();
            return await SaveAsync(admin, kind, secret, token, username, retried: true, ct);
        }
        auth.Remember(c, secret, token);
        log.LogInformation("Salesforce org {Instance} connected for team {Team} ({Kind})", c.InstanceUrl, c.TeamId, kind);
        return c;
    }

    /// <summary>
    /// The JWT bearer flow for the configured pre-authorised user. The server's key is trusted by every org that
    /// pre-authorises the connected app, without asking the user it names: so the subject is the operator's choice
    /// (Salesforce:JwtUsername), never a team admin's, or one team could connect as another team's integration user.
    /// A username given that is not the configured one is refused (Forbidden). So is a team that Salesforce:JwtTeams does
    /// not name: that user acts in one org, the org of the teams the operator set it up for, and another team bound to
    /// it would log its mail there and learn that org's Contacts from its delivery log.
    /// </summary>
    public async Task<(SalesforceConnection? Connection, string? Problem, bool Forbidden)> ConnectJwtAsync(CurrentUser admin, string? username, CancellationToken ct)
    {
        if (!auth.Options.JwtConfigured) return (null, "The JWT bearer flow is not configured: set Salesforce:ClientId and Salesforce:JwtPrivateKeyPath (or JwtPrivateKeyPem).", false);
        var user = auth.Options.JwtUsername?.Trim();
        if (string.IsNullOrEmpty(user)) return (null, "The JWT bearer flow has no user to act as: the server's administrator sets Salesforce:JwtUsername.", false);
        if (!await JwtAllowedAsync(db, auth.Options, admin.TeamId, ct))
        {
            return (null, "The server's certificate acts in the Salesforce org of the teams its administrator names (Salesforce:JwtTeams), " +
                          "and this team is not one of them; connect with the Salesforce sign-in instead.", true);
        }
        if (!string.IsNullOrWhiteSpace(username) && !string.Equals(username.Trim(), user, StringComparison.OrdinalIgnoreCase))
        {
            return (null, "The server's certificate acts only as the user its administrator configured (Salesforce:JwtUsername); " +
                          "to act as another Salesforce user, connect with the Salesforce sign-in instead.", true);
        }
        if (user.Length > 320 || user.Any(char.IsControl) || user.Contains(' ')) return (null, "The configured Salesforce username (Salesforce:JwtUsername) is not valid.", false);
        try
        {
            var token = await auth.JwtBearerAsync(user, ct);
            return (await SaveAsync(admin, SalesforceAuthKind.JwtBearer, new SalesforceSecret(null, user), token, user, ct), null, false);
        }
        catch (SalesforceAuthException ex)
        {
            log.LogWarning("Salesforce refused the JWT bearer grant for {User}: {Error}", user, ex.Message);
            return (null, ex.Transient
                ? "Salesforce could not be reached; try again. " + ex.Description
                : $"Salesforce refused the JWT for {user}: {ex.Error}{(ex.Description is null ? "" : " — " + ex.Description)}. Check that the certificate is uploaded to the connected app and that the user is pre-authorised.", false);
        }
    }

    public async Task<SalesforceConnection?> UpdateSettingsAsync(Guid teamId, SalesforceSettingsRequest r, CancellationToken ct)
    {
        var c = await FindAsync(teamId, ct);
        if (c is null) return null;
        c.LogSent = r.LogSent ?? c.LogSent;
        c.LogReplies = r.LogReplies ?? c.LogReplies;
        c.LogOpens = r.LogOpens ?? c.LogOpens;
        c.LogClicks = r.LogClicks ?? c.LogClicks;
        c.LogAutoReplies = r.LogAutoReplies ?? c.LogAutoReplies;
        c.LogBounces = r.LogBounces ?? c.LogBounces;
        c.UnknownRecipients = r.UnknownRecipients ?? c.UnknownRecipients;
        c.RelateToOpportunity = r.RelateToOpportunity ?? c.RelateToOpportunity;
        await db.SaveChangesAsync(ct);
        return c;
    }

    /// <summary>Revokes the refresh token at Salesforce (best effort) and forgets the connection.</summary>
    public async Task<bool> DisconnectAsync(Guid teamId, CancellationToken ct)
    {
        var c = await FindAsync(teamId, ct);
        if (c is null) return false;
        if (c.AuthKind == SalesforceAuthKind.WebServer && auth.Unprotect(c.ProtectedSecret)?.RefreshToken is { Length: > 0 } refresh
            && !await auth.RevokeAsync(refresh, ct))
        {
            log.LogWarning("Revoking the Salesforce refresh token of team {Team} failed; the connection is removed anyway", teamId);
        }
        auth.Forget(c.Id);
        db.SalesforceConnections.Remove(c);
        await db.SaveChangesAsync(ct);
        return true;
    }
}
