using System.Net;
using EmailTracking.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Accounts;

/// <summary>Team management (`Team:*`).</summary>
public sealed class TeamOptions
{
    public const string Section = "Team";

    /// <summary>How long the link in an invitation mail works (it works once in any case).</summary>
    public TimeSpan InvitationLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>The least time between two invitation mails to one member (0: none): the first is not held back.</summary>
    public TimeSpan InvitationResendAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>The most invitation mails sent again to one member in 24 hours (the first mail is not counted).</summary>
    public int InvitationResendsPerDay { get; set; } = 5;

    /// <summary>The most invitation mails a team's admins send again in an hour, to all its members together.</summary>
    public int InvitationResendsPerHour { get; set; } = 20;
}

/// <summary>
/// An admin asked to mail an invitation again sooner, or more often, than <see cref="TeamOptions"/> allow: nothing was
/// sent. <see cref="RetryAfter"/> says when one may go.
/// </summary>
public sealed class InvitationLimitException(string message, TimeSpan retryAfter) : AccountException(message)
{
    public TimeSpan RetryAfter { get; } = retryAfter;
}

/// <summary>
/// The invitation's token: Identity's, as the password reset's (<see cref="PasswordResetTokenProvider"/>), under its own
/// name and lifetime, so that neither kind of link is taken for the other. Choosing the password gives the account a new
/// security stamp: the link, and any other invitation sent before, stop working.
/// </summary>
public sealed class InvitationTokenProvider(IDataProtectionProvider provider, IOptions<TeamOptions> options,
    [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider clock, ILogger<DataProtectorTokenProvider<User>> log)
    : DataProtectorTokenProvider<User>(new PasswordResetTokenProvider.OnClock(provider, clock, options.Value.InvitationLifetime),
        Microsoft.Extensions.Options.Options.Create(new DataProtectionTokenProviderOptions { Name = ProviderName, TokenLifespan = options.Value.InvitationLifetime }), log)
{
    public const string ProviderName = "EmailTracking.Invitation";
    public const string Purpose = "Invitation";
}

/// <summary>
/// A member an admin adds is mailed a link to choose their own password, when the server can mail links (the same
/// condition as the password reset's: a relay and a public base URL), instead of being given an initial password the
/// admin must hand over. The link opens the invitation's own page (<see cref="Pages.AcceptInvitationModel"/>); links mailed
/// before that page existed went to the reset page with <c>k=invite</c>, which forwards them there.
/// </summary>
public sealed class Invitations(ServerMailQueue queue, PasswordResets resets, IOptions<TeamOptions> options)
{
    /// <summary>The query value that made the reset page an invitation's, in links mailed before the invitation had its own page.</summary>
    public const string Kind = "invite";

    public bool Offered => resets.Offered;

    public TimeSpan Lifetime => options.Value.InvitationLifetime;

    /// <summary>The team settings: the limits on sending again are <see cref="TeamMembers.InviteAsync"/>'s.</summary>
    public TeamOptions Options => options.Value;

    /// <summary>
    /// Mails <paramref name="member"/> a new invitation, through the server's mail queue (<see cref="ServerMailQueue"/>),
    /// tried at once; throws <see cref="SystemMailException"/> when the relay refuses it for good. A relay that refuses
    /// for now, or cannot be reached, is tried again later by the queue (the link is made as the mail goes).
    /// </summary>
    public async Task SendAsync(User member, string teamName, string? invitedBy, CancellationToken ct)
    {
        if (resets.BaseUrl is null || member.Email is null) throw new SystemMailException("This server cannot mail invitations (Mail:Smtp and Tracking:PublicBaseUrl).");
        var sent = await queue.SendNowAsync(ServerMail.Invitation, member.Email, member.Id, ServerMailQueue.Invitation(teamName, invitedBy), ct);
        if (sent.State is ServerMailState.Failed or ServerMailState.Dropped) throw new SystemMailException(sent.Error ?? "The invitation mail could not be sent.");
    }

    /// <summary>The invitation's link: its own page, with the member's id and Identity's invitation token.</summary>
    public static string Url(string baseUrl, Guid userId, string token) =>
        $"{baseUrl}{Pages.AcceptInvitationModel.PagePath}?u={userId:N}&t={Uri.EscapeDataString(token)}";

    public static MimeMessage Compose(string to, string teamName, string? invitedBy, string url, TimeSpan lifetime)
    {
        var lasts = DescribeLifetime(lifetime);
        var by = string.IsNullOrWhiteSpace(invitedBy) ? "An admin" : invitedBy;
        var message = new MimeMessage();
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = $"You are invited to the team {teamName} on EmailTracking";
        message.Headers.Add("Auto-Submitted", "auto-generated");
        var text = $"""
            {by} added {to} to the team {teamName} on EmailTracking.

            Accept the invitation here: choose your password, and you are signed in.
            {url}

            The link works once, for {lasts}. If it has expired, ask an admin of the team to send a new invitation.
            """;
        var e = (string s) => WebUtility.HtmlEncode(s);
        var html = $"""
            <p>{e(by)} added <b>{e(to)}</b> to the team <b>{e(teamName)}</b> on EmailTracking.</p>
            <p>Accept the invitation here: choose your password, and you are signed in.</p>
            <p><a href="{e(url)}">Accept the invitation</a></p>
            <p>The link works once, for {e(lasts)}. If it has expired, ask an admin of the team to send a new invitation.</p>
            """;
        message.Body = new BodyBuilder { TextBody = text, HtmlBody = html }.ToMessageBody();
        return message;
    }

    /// <summary>"7 days", "1 day", else as a reset link's lifetime is said.</summary>
    public static string DescribeLifetime(TimeSpan t) =>
        t.TotalDays >= 1 && t.TotalDays == Math.Floor(t.TotalDays) ? (t.TotalDays == 1 ? "1 day" : $"{t.TotalDays:0} days") : PasswordResets.DescribeLifetime(t);
}
