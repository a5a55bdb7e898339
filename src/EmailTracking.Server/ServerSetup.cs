using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Server.Data;
using EmailTracking.Server.Feed;
using EmailTracking.Server.Gmail;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Mailboxes.Gmail;
using EmailTracking.Server.Outbox;
using EmailTracking.Server.Replies;
using EmailTracking.Server.Salesforce;
using EmailTracking.Server.Replies.Classification;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Outlook;
using EmailTracking.Server.Sequences;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Tracking.Classification;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.OpenApi;

namespace EmailTracking.Server;

/// <summary>Wires the features together; Program.cs and the tests share it.</summary>
public static class ServerSetup
{
    public static void AddEmailTrackingServer(this WebApplicationBuilder builder)
    {
        var services = builder.Services;
        var config = builder.Configuration;
        UseBuildOutputWhenStartedElsewhere(builder);
        // A user agent or referrer that is not UTF-8 (an old client's Latin-1) is read as Latin-1 instead of refused with a
        // 400 (Web/RequestHeaderEncoding): the pixel answers with its image, the click with its redirect, and the hit is
        // recorded. Only those two, the free text clients write: every other header keeps Kestrel's own reading, whose
        // fast path the pixel's throughput depends on.
        builder.WebHost.ConfigureKestrel(o => o.RequestHeaderEncodingSelector = name =>
            name.Equals("User-Agent", StringComparison.OrdinalIgnoreCase) || name.Equals("Referer", StringComparison.OrdinalIgnoreCase)
                ? Web.RequestHeaderEncoding.Instance : null);

        services.AddSingleton(TimeProvider.System);
        services.AddOptions<TrackingOptions>().Bind(config.GetSection(TrackingOptions.Section));
        services.AddAppDatabase(config);
        var dataProtection = services.AddDataProtection()
            .SetApplicationName("EmailTracking")
            .PersistKeysToDbContext<AppDbContext>();
        ProtectKeysAtRest(dataProtection, config);
        services.AddAccounts(config);
        services.AddHostedService(sp => sp.GetRequiredService<PasswordResetMailer>());
        services.AddHostedService<ServerMailWorker>();
        services.AddMemoryCache(o => o.SizeLimit = 200_000);
        services.AddProblemDetails();
        services.AddExceptionHandler<UnreadableRequests>();
        services.AddExceptionHandler<BrowserPageExceptions>();
        // A malformed body is the client's mistake in every environment: a 4xx problem that says what is wrong and where
        // (UnreadableRequests), never an exception page. Thrown, so that the reason reaches the handler.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.ConfigureHttpJsonOptions(o =>
        {
            // First, so that it reads every enum: only values the enum defines (a number is taken too, but {"role": 5}
            // is refused). The plain converter stays after it for what looks for it (Swashbuckle's enum names).
            o.SerializerOptions.Converters.Add(new Web.DefinedEnumConverter(JsonNamingPolicy.KebabCaseLower));
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower));
            // A time without its zone is UTC, as in the query string, not the server's own zone.
            o.SerializerOptions.Converters.Add(new Web.ZonelessTimeConverter());
        });

        services.AddHitClassification(config);
        services.AddSingleton<TrackingTargets>();
        services.AddSingleton<EventRecorder>();
        services.AddHostedService(sp => sp.GetRequiredService<EventRecorder>());
        services.AddSingleton<FeedNotifier>();
        services.AddSingleton<VerdictCorrections>();
        services.AddOptions<MailboxOptions>().Bind(config.GetSection(MailboxOptions.Section))
            .Validate(o => o.KeepUnsentForIsValid, "Mailboxes:KeepUnsentFor: between 00:01:00 (a minute) and 90.00:00:00 (90 days), such as 7.00:00:00")
            .Validate(o => o.ResendClaimHoldIsValid, "Mailboxes:ResendClaimHold: between 00:00:02 (2 seconds) and 1.00:00:00 (a day), such as 00:10:00")
            .ValidateOnStart();
        services.AddSingleton<MailboxSecrets>();
        services.AddSingleton<MailboxWatcher>();
        services.AddHostedService(sp => sp.GetRequiredService<MailboxWatcher>());
        services.AddScoped<MailboxService>();
        services.AddScoped<MailSender>();
        services.AddScoped<IdempotencyKeys>();
        services.AddSingleton<IdempotencyUpkeep>();
        services.AddKeyedSingleton(IdempotencyKeys.ClockKey, (sp, _) => sp.GetRequiredService<TimeProvider>());
        services.AddScoped<StagedAttachments>();
        services.AddSingleton<StagedAttachmentUpkeep>();
        services.AddSingleton<UnsentContentUpkeep>();
        services.AddKeyedSingleton(StagedAttachments.ClockKey, (sp, _) => sp.GetRequiredService<TimeProvider>());
        services.AddSingleton<MailboxSignals>();
        services.AddKeyedScoped<IMailboxWatch, ImapWatch>(MailboxKind.Imap);
        services.AddKeyedScoped<IMailTransport, SmtpTransport>(MailboxKind.Imap);
        services.AddOptions<GmailOptions>().Bind(config.GetSection(GmailOptions.Section));
        services.AddSingleton<GmailAuth>();
        services.AddKeyedScoped<IMailboxWatch, GmailWatch>(MailboxKind.Gmail);
        services.AddKeyedScoped<IMailTransport, GmailTransport>(MailboxKind.Gmail);
        services.AddOptions<GraphOptions>().Bind(config.GetSection(GraphOptions.Section));
        services.AddOptions<OutlookAddinOptions>().Bind(config.GetSection(OutlookAddinOptions.Section))
            .Validate(o => o.Ancestors.All(OutlookAddinOptions.IsHostSource),
                "OutlookAddin:FrameAncestors: each must be an https origin such as https://outlook.office365.us (or https://*.example.com)")
            .ValidateOnStart();
        services.AddHttpClient(GraphConnector.HttpClientName);
        services.AddSingleton<GraphConnector>();
        services.AddKeyedScoped<IMailboxWatch, GraphWatch>(MailboxKind.Graph);
        services.AddKeyedScoped<IMailTransport, GraphTransport>(MailboxKind.Graph);
        services.AddContent(config);
        services.AddGmailAddon(config);
        services.AddResponseCompression(o =>
        {
            // Static script and styles only (see UseEmailTrackingAsync): nothing secret to leak through compression.
            o.EnableForHttps = true;
            o.MimeTypes = ["text/javascript", "application/javascript", "text/css", "application/wasm"];
            o.Providers.Add<Microsoft.AspNetCore.ResponseCompression.BrotliCompressionProvider>();
            o.Providers.Add<Microsoft.AspNetCore.ResponseCompression.GzipCompressionProvider>();
        });
        services.Configure<Microsoft.AspNetCore.ResponseCompression.BrotliCompressionProviderOptions>(o => o.Level = System.IO.Compression.CompressionLevel.Optimal);
        services.AddInboundClassification(config);
        services.AddScoped<InboundPipeline>();
        services.AddScoped<SentMailScanner>();
        services.AddHostedService<PostgresFeedListener>();
        services.AddOptions<SequenceOptions>().Bind(config.GetSection(SequenceOptions.Section));
        services.AddSingleton<SequenceSignal>();
        services.AddKeyedSingleton(SequenceOptions.ClockKey, (sp, _) => sp.GetRequiredService<TimeProvider>());
        services.AddScoped<SequenceEnroller>();
        services.AddScoped<SequenceRunner>();
        services.AddHostedService<SequenceScheduler>();
        services.AddOptions<OutboxOptions>().Bind(config.GetSection(OutboxOptions.Section));
        services.AddOptions<WebhookOptions>().Bind(config.GetSection(WebhookOptions.Section));
        services.AddSingleton<OutboxSignal>();
        services.AddSingleton<WebhookGuard>();
        services.AddScoped<OutboxDispatcher>();
        services.AddScoped<OutboxWorker>();
        services.AddScoped<IOutboxSubscribers, WebhookSubscribers>();
        services.AddKeyedScoped<IDeliveryTarget, WebhookTarget>(WebhookTarget.TargetKind);
        // Redirects are not followed (they could lead to an address the guard would refuse); the guard checks the
        // address actually connected to, so no proxy (HTTPS_PROXY) either: the guard would see the proxy's address.
        // No request logging: the factory's loggers write each request's URL at Information, and a webhook's path is
        // often the receiver's only secret (Slack, Zapier and the like put a token there).
        services.AddHttpClient(WebhookTarget.HttpClientName, (sp, c) => c.Timeout = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<WebhookOptions>>().Value.Timeout)
            .RemoveAllLoggers()
            .ConfigurePrimaryHttpMessageHandler(sp => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                UseProxy = false,
                ConnectCallback = sp.GetRequiredService<WebhookGuard>().ConnectAsync,
                PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            });
        services.AddHostedService<OutboxService>();
        services.AddOptions<FeedOptions>().Bind(config.GetSection(FeedOptions.Section));
        services.AddOptions<SalesforceOptions>().Bind(config.GetSection(SalesforceOptions.Section))
            .PostConfigure(o => o.JwtTeams = SalesforceJwtTeams(config));
        // Like webhooks: the address actually connected to must be public (loopback only for a loopback login URL, a
        // local stand-in), no redirects followed, no proxy (the check would see the proxy's address).
        services.AddHttpClient(SalesforceAuth.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(sp =>
            {
                var loginIsLoopback = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<SalesforceOptions>>().Value.LoginIsLoopback;
                return new SocketsHttpHandler
                {
                    AllowAutoRedirect = false,
                    UseProxy = false,
                    ConnectCallback = (context, ct) => SalesforceAuth.ConnectAsync(context, loginIsLoopback, Web.PublicAddress.Resolve, ct),
                    PooledConnectionLifetime = TimeSpan.FromMinutes(2),
                };
            });
        services.AddSingleton<SalesforceAuth>();
        services.AddScoped<SalesforceClient>();
        services.AddScoped<SalesforceService>();
        services.AddKeyedScoped<IDeliveryTarget, SalesforceTarget>(SalesforceTarget.TargetKind);
        services.AddScoped<IOutboxSubscribers, SalesforceSubscribers>();

        services.AddRazorPages(o =>
        {
            o.Conventions.AuthorizeFolder("/");
            o.Conventions.AllowAnonymousToPage("/Login");
            o.Conventions.AllowAnonymousToPage("/Setup");
            o.Conventions.AllowAnonymousToPage("/ForgotPassword");
            o.Conventions.AllowAnonymousToPage("/ResetPassword");
            o.Conventions.AllowAnonymousToPage("/AcceptInvitation");
            // Errors are shown to whoever met them, signed in or not (a stale link, /setup once a user exists).
            o.Conventions.AllowAnonymousToPage("/Error");
            // The template and sequence forms: /templates/new and /sequences/new, or an existing one by id.
            o.Conventions.AddPageRoute("/TemplateEdit", "/templates/{id:guid}");
            o.Conventions.AddPageRoute("/SequenceEdit", "/sequences/{id:guid}/edit");
        }).AddMvcOptions(o =>
        {
            o.Filters.Add<DeviceCookieFilter>();
            // A post naming a handler the page does not have runs none (Razor Pages would run the default OnPost).
            o.Filters.Add(new UnknownPageHandlerFilter());
        });

        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "EmailTracking API",
                Version = "v1",
                Description = "Register emails before they are sent, read opens, clicks and replies. Authenticate with a personal API token: `Authorization: Bearer et_…`.",
            });
            o.AddSecurityDefinition("bearer", new OpenApiSecurityScheme
            {
                Type = SecuritySchemeType.Http,
                Scheme = "bearer",
                Description = "A personal API token (et_…), from the web app or `et users add`; or, from the Outlook add-in, a Microsoft access token for this API's access_as_user scope.",
            });
            o.AddSecurityRequirement(doc => new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("bearer", doc)] = [] });
            o.OperationFilter<IdempotencyKeyOperationFilter>();
        });

        var (proxies, networks) = KnownProxies(config);
        services.Configure<ForwardedHeadersOptions>(o =>
        {
            // Only the proxies named in configuration are believed about the client's address, scheme and host. The
            // middleware looks at who sent the headers only when one of its lists has an entry: with both empty it
            // believes anyone, so that anyone could choose the address an open is recorded from or a reset request is
            // counted for, and the host generated links name. With no proxy named the headers are not read at all.
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var ip in proxies) o.KnownProxies.Add(ip);
            foreach (var net in networks) o.KnownIPNetworks.Add(net);
            o.ForwardedHeaders = proxies.Count + networks.Count == 0
                ? ForwardedHeaders.None
                : ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
        });
    }

    /// <summary>
    /// <c>Salesforce:JwtTeams</c>: team names or ids, as a list (<c>Salesforce:JwtTeams:0</c>, …) or one value
    /// (<c>Salesforce__JwtTeams=Acme</c>, what an environment variable holds, which the list binder would read as no list
    /// at all). One value is one team: names are not split, since a team's name may hold a comma.
    /// </summary>
    internal static string[] SalesforceJwtTeams(IConfiguration config)
    {
        return [.. ListOrValue(config.GetSection(SalesforceOptions.Section + ":JwtTeams")).Select(v => v?.Trim()).OfType<string>().Where(v => v.Length > 0)];
    }

    /// <summary>A setting given as a list (<c>Key:0</c>, <c>Key:1</c>, …) or as one value (<c>Key</c>, as an environment variable gives it): the values either way.</summary>
    static IEnumerable<string?> ListOrValue(IConfigurationSection section) => section.GetChildren().Select(c => c.Value).Append(section.Value);

    /// <summary>
    /// <c>Server:KnownProxies</c>: addresses and CIDR ranges, as a list (<c>Server:KnownProxies:0</c>, …) or one value
    /// separated by commas (<c>Server__KnownProxies=10.0.0.5,10.1.0.0/16</c>, what an environment variable holds, which
    /// the list binder would read as no list at all). An entry that is neither stops the start: a proxy silently left
    /// out would make every client look like the proxy.
    /// </summary>
    internal static (List<IPAddress> Proxies, List<System.Net.IPNetwork> Networks) KnownProxies(IConfiguration config)
    {
        var entries = ListOrValue(config.GetSection("Server:KnownProxies"))
            .SelectMany(v => (v ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        var proxies = new List<IPAddress>();
        var networks = new List<System.Net.IPNetwork>();
        foreach (var entry in entries)
        {
            if (!entry.Contains('/') && IPAddress.TryParse(entry, out var ip)) proxies.Add(ip);
            else if (System.Net.IPNetwork.TryParse(entry, out var net)) networks.Add(net);
            else
            {
                throw new InvalidOperationException($"Server:KnownProxies: '{entry}' is neither an IP address nor a CIDR range " +
                    "such as 10.1.0.0/16.");
            }
        }
        return (proxies, networks);
    }

    /// <summary>
    /// With <c>DataProtection:CertificatePath</c> (a PKCS#12 file with its private key), the Data Protection keys are
    /// encrypted with that certificate before they are stored in the database, so a copy of the database alone does not
    /// give them away. <c>DataProtection:PreviousCertificatePaths</c> keeps keys written under earlier certificates
    /// readable after a rotation. A certificate that cannot be loaded stops the start: keys are never stored in the
    /// clear when encryption was asked for.
    /// </summary>
    static void ProtectKeysAtRest(IDataProtectionBuilder dataProtection, IConfiguration config)
    {
        var section = config.GetSection("DataProtection");
        var path = section["CertificatePath"];
        if (string.IsNullOrWhiteSpace(path)) return;
        var password = section["CertificatePassword"];
        var current = LoadKeyCertificate(path, password, "DataProtection:CertificatePath");
        var previous = section.GetSection("PreviousCertificatePaths").Get<string[]>() ?? [];
        var all = previous.Select((p, i) => LoadKeyCertificate(p, password, $"DataProtection:PreviousCertificatePaths:{i}")).Prepend(current).ToArray();
        dataProtection.ProtectKeysWithCertificate(current).UnprotectKeysWithAnyCertificate(all);
    }

    static X509Certificate2 LoadKeyCertificate(string path, string? password, string setting)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new InvalidOperationException($"{setting}: the certificate for the Data Protection keys could not be loaded from {path}: {ex.Message}", ex);
        }
        if (!certificate.HasPrivateKey)
            throw new InvalidOperationException($"{setting}: {path} holds no private key; the Data Protection keys could not be read back.");
        return certificate;
    }

    /// <summary>
    /// `dotnet EmailTracking.Server.dll` may start from any directory (data/ is created in the current one). The pages'
    /// assets and the defaults in appsettings.json then come from the build output instead of the current directory.
    /// </summary>
    static void UseBuildOutputWhenStartedElsewhere(WebApplicationBuilder builder)
    {
        var output = AppContext.BaseDirectory;
        var env = builder.Environment;
        var outputRoot = Path.Combine(output, "wwwroot");
        if (!File.Exists(Path.Combine(env.WebRootPath ?? "", "css", "app.css")) && Directory.Exists(outputRoot))
        {
            env.WebRootPath = outputRoot;
            env.WebRootFileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(outputRoot);
        }
        var defaults = Path.Combine(output, "appsettings.json");
        if (!string.Equals(Path.GetFullPath(env.ContentRootPath), Path.GetFullPath(output).TrimEnd('/'), StringComparison.Ordinal) && File.Exists(defaults))
        {
            // Lowest precedence: anything in the current directory, the environment or the command line wins.
            builder.Configuration.Sources.Insert(0, new Microsoft.Extensions.Configuration.Json.JsonConfigurationSource
            {
                Path = defaults, Optional = true, ReloadOnChange = false,
                FileProvider = new Microsoft.Extensions.FileProviders.PhysicalFileProvider(output),
            });
        }
    }

    public static async Task UseEmailTrackingAsync(this WebApplication app)
    {
        if (app.Configuration.GetValue("Database:MigrateOnStart", true))
        {
            await DataExtensions.MigrateAsync(app.Services);
        }

        app.UseForwardedHeaders();
        // Here rather than first (where WebApplication puts it by default): the tracking endpoints run from routing
        // itself (see TrackingApi.MapTracking) and must see the client's address the forwarded headers give.
        app.UseRouting();
        app.UseEmailTrackingErrorPages();
        app.UseMiddleware<SecurityHeaders>();
        // pdf.js fetches character maps, standard fonts and colour profiles from the viewer's assets; they are data.
        var types = new Microsoft.AspNetCore.StaticFiles.FileExtensionContentTypeProvider();
        foreach (var ext in new[] { ".bcmap", ".pfb", ".icc" }) types.Mappings[ext] = "application/octet-stream";
        types.Mappings[".wasm"] = "application/wasm";
        types.Mappings[".mjs"] = "text/javascript";
        // The viewer's script and pdf.js's worker are 1.5 MB as built: compressed (a third of that) and, as their names
        // carry a hash of their content, cached for good. Only the viewer's files go through compression, so the
        // tracking hot path does not pay for it.
        app.UseWhen(http => http.Request.Path.StartsWithSegments("/viewer"), viewer => viewer.UseResponseCompression());
        app.UseMiddleware<LaunchEventScript>();
        app.UseStaticFiles(new StaticFileOptions
        {
            ContentTypeProvider = types,
            OnPrepareResponse = file =>
            {
                if (file.Context.Request.Path.StartsWithSegments("/viewer/assets"))
                    file.Context.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
            },
        });
        app.UseMiddleware<FirstRunRedirect>();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseMiddleware<CookieApiGuard>();
        app.UseMiddleware<PasswordChangeRequired>();

        app.UseSwagger();
        app.UseSwaggerUI(o =>
        {
            o.DocumentTitle = "EmailTracking API";
            // "Try it out" while signed in to the web app goes with its cookie: it says so (see CookieApiGuard).
            o.UseRequestInterceptor($"(request) => {{ request.headers['{CookieApiGuard.Header}'] = 'swagger-ui'; return request; }}");
        });

        app.MapGet("/healthz", () => Results.Text("ok")).ExcludeFromDescription().AllowAnonymous();
        app.MapTracking(benchBaseline: app.Configuration.GetValue("Bench:BaselineEndpoint", false));
        app.MapMessages();
        app.MapContent();
        app.MapViewer();
        app.MapAccounts();
        app.MapTeam();
        app.MapMailboxes();
        app.MapGraph();
        app.MapFeed();
        app.MapGmailAddon();
        app.MapOutlook();
        app.MapSequences();
        app.MapUnsubscribe();
        app.MapOutbox();
        app.MapSalesforce();
        app.MapRazorPages();
    }
}
