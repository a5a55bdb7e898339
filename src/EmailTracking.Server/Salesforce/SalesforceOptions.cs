namespace EmailTracking.Server.Salesforce;

/// <summary>
/// The connected app that logs mail to Salesforce (section <c>Salesforce</c>). The web-server flow needs the
/// consumer key and secret; the JWT bearer flow needs the consumer key, the private key whose certificate is
/// uploaded to the connected app, and the pre-authorised user it acts as.
/// </summary>
public sealed class SalesforceOptions
{
    public const string Section = "Salesforce";

    /// <summary>What the web-server flow asks for: the REST API, and a refresh token to use it while nobody is signed in.</summary>
    public const string Scopes = "api refresh_token";

    /// <summary>https://login.salesforce.com, https://test.salesforce.com (sandboxes) or a My Domain login URL.</summary>
    public string LoginUrl { get; set; } = "https://login.salesforce.com";

    /// <summary>The connected app's consumer key (also the JWT issuer).</summary>
    public string? ClientId { get; set; }
    public string? ClientSecret { get; set; }

    /// <summary>The callback exactly as registered on the connected app; empty: built from the request (<c>/salesforce/callback</c>).</summary>
    public string? RedirectUri { get; set; }

    /// <summary>JWT bearer flow: a PEM file with the RSA private key (PKCS#8 or PKCS#1).</summary>
    public string? JwtPrivateKeyPath { get; set; }
    /// <summary>JWT bearer flow: the PEM itself, when it comes from a secret store rather than a file.</summary>
    public string? JwtPrivateKeyPem { get; set; }
    /// <summary>JWT bearer flow: the Salesforce username the server acts as (pre-authorised on the connected app).</summary>
    public string? JwtUsername { get; set; }
    /// <summary>
    /// JWT bearer flow: the teams that may connect as <see cref="JwtUsername"/>, each by its name (as <c>et</c> names
    /// teams) or its id. That user acts in one org, whoever connects: any other team bound to it would log its mail
    /// into that org and could learn its Contacts from the delivery log. None when empty.
    /// </summary>
    public string[] JwtTeams { get; set; } = [];
    /// <summary>The JWT audience; empty: the login URL (Salesforce wants https://login.salesforce.com or https://test.salesforce.com).</summary>
    public string? JwtAudience { get; set; }

    /// <summary>The REST API version, as in /services/data/v62.0/.</summary>
    public string ApiVersion { get; set; } = "62.0";

    /// <summary>How long one call to Salesforce may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The external-id field on Task that makes a redelivery update the same Task (see the README).</summary>
    public string TaskKeyField { get; set; } = "EmailTracking_Key__c";

    /// <summary>
    /// Relate a Contact's Task to an open Opportunity instead of the Account when there is exactly one to choose: the only
    /// open Opportunity the Contact has a contact role on, else the Account's only open Opportunity. One or two more
    /// queries per event, so off by default.
    /// </summary>
    public bool RelateToOpportunity { get; set; }

    public bool WebFlowConfigured => !string.IsNullOrWhiteSpace(ClientId) && !string.IsNullOrWhiteSpace(ClientSecret);

    public bool JwtConfigured => !string.IsNullOrWhiteSpace(ClientId)
        && (!string.IsNullOrWhiteSpace(JwtPrivateKeyPath) || !string.IsNullOrWhiteSpace(JwtPrivateKeyPem));

    /// <summary>Whether <see cref="JwtTeams"/> names the team, by its name (exactly) or its id.</summary>
    public bool JwtAllows(Guid teamId, string teamName) =>
        JwtTeams.Select(t => t.Trim()).Any(t => t.Length > 0 && (t == teamName || (Guid.TryParse(t, out var id) && id == teamId)));

    public string LoginBase => LoginUrl.TrimEnd('/');

    /// <summary>The login URL is on this machine: a local stand-in for Salesforce, which may then name loopback URLs.</summary>
    public bool LoginIsLoopback => Uri.TryCreate(LoginBase, UriKind.Absolute, out var login) && login.IsLoopback;
}
