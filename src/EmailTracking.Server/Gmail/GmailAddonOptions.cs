namespace EmailTracking.Server.Gmail;

/// <summary>
/// The Google Workspace add-on (HTTP deployment): who may call its endpoints and where its links point. Every value
/// comes from the deployment: <c>gcloud workspace-add-ons get-authorization</c> prints the service-account email and
/// the OAuth client id.
/// </summary>
public sealed class GmailAddonOptions
{
    public const string Section = "GmailAddon";

    /// <summary>
    /// The public base URL the deployment was written for (the URL Google calls); empty: Tracking:PublicBaseUrl. Card
    /// buttons call back under it and the web-app links point there, so it must match deployment.json.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>
    /// The audiences accepted on the system ID token. Google sets <c>aud</c> to the endpoint URL it was given; whether
    /// that is the base URL or each trigger's exact URL is not documented, so the list names every URL that is ours.
    /// Empty: every request is refused.
    /// </summary>
    public string[] Audiences { get; set; } = [];

    /// <summary>The deployment's service account (service-{project number}@gcp-sa-gsuiteaddons.iam.gserviceaccount.com), compared exactly.</summary>
    public string? ServiceAccountEmail { get; set; }

    /// <summary>The add-on's OAuth client id: the audience of the user ID token that names the Gmail user.</summary>
    public string? OAuthClientId { get; set; }

    /// <summary>Where the token signing keys are read (JWKS); empty: Google's (https://www.googleapis.com/oauth2/v3/certs).</summary>
    public string? CertsUrl { get; set; }

    /// <summary>How many recipients the homepage lists as the most engaged.</summary>
    public int TopRecipients { get; set; } = 5;

    public bool IsConfigured => Audiences.Any(a => !string.IsNullOrWhiteSpace(a)) && !string.IsNullOrWhiteSpace(ServiceAccountEmail)
                                && !string.IsNullOrWhiteSpace(OAuthClientId);
}
