using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Mvc.Filters;

namespace EmailTracking.Server.Web;

/// <summary>Pages run no inline script and load nothing from elsewhere.</summary>
public sealed class SecurityHeaders(RequestDelegate next, Microsoft.Extensions.Options.IOptions<Outlook.OutlookAddinOptions> addin)
{
    readonly string addinCsp = Outlook.OutlookApi.AddinCsp(addin.Value.Ancestors);

    const string Csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
                       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'";

    /// <summary>Swagger UI's pages: framed by nobody (their scripts and styles keep Swagger UI's own ways).</summary>
    public const string SwaggerCsp = "frame-ancestors 'none'";

    public Task Invoke(HttpContext http)
    {
        http.Response.OnStarting(() =>
        {
            var h = http.Response.Headers;
            h.XContentTypeOptions = "nosniff";
            // Every page of ours follows the strict policy; Swagger UI, which brings its own inline bootstrap, is kept
            // out of frames.
            if (http.Request.Path.StartsWithSegments("/viewer"))
            {
                // The viewer's own files: pdf.js's worker takes its policy from its script's response, and decodes
                // some images with WebAssembly (compiling it is all 'wasm-unsafe-eval' allows; JavaScript eval stays off).
                h.ContentSecurityPolicy = Content.ViewerApi.AssetCsp;
            }
            else if (http.Request.Path.StartsWithSegments("/d"))
            {
                // The document viewer: nothing but its own script, styles, worker and our API.
                h.ContentSecurityPolicy = http.Items.ContainsKey(Content.ViewerApi.GatePageItem) ? Content.ViewerApi.GateCsp : Content.ViewerApi.Csp;
                h.XFrameOptions = "DENY";
                h["Referrer-Policy"] = "no-referrer";
            }
            else if (http.Request.Path.StartsWithSegments(Outlook.OutlookApi.AddinPath))
            {
                // The Outlook add-in's pages run inside Outlook, which frames them (on the web and in new Outlook) from
                // its own origins: frame-ancestors names those, and there is no X-Frame-Options (it cannot name several
                // origins). Office.js may come from Microsoft's CDN.
                h.ContentSecurityPolicy = addinCsp;
            }
            else if (http.Request.Path.StartsWithSegments("/swagger"))
            {
                // Swagger UI runs its own inline bootstrap, so the pages' script policy cannot hold here; but nothing
                // may frame it either: its "Try it out" sends requests with the signed-in user's cookie, and a page
                // showing it under a decoy could have them clicked.
                h.ContentSecurityPolicy = SwaggerCsp;
                h.XFrameOptions = "DENY";
            }
            else
            {
                h.ContentSecurityPolicy = Csp;
                h.XFrameOptions = "DENY";
            }
            return Task.CompletedTask;
        });
        return next(http);
    }
}

/// <summary>Until the first user exists, the web app offers to create one instead of a sign-in form.</summary>
public sealed class FirstRunRedirect(RequestDelegate next)
{
    volatile bool hasUser;

    public async Task Invoke(HttpContext http)
    {
        var path = http.Request.Path;
        if (!hasUser && (path == "/" || path.StartsWithSegments("/login")))
        {
            // Resolved here, not as a parameter: the pixel and click paths must not build a DbContext for this.
            var accounts = http.RequestServices.GetRequiredService<AccountService>();
            hasUser = await accounts.AnyUserAsync(http.RequestAborted);
            if (!hasUser)
            {
                http.Response.Redirect("/setup");
                return;
            }
        }
        await next(http);
    }
}

/// <summary>Marks the signed-in sender's device on every page, so their own opens and clicks are set apart.</summary>
public sealed class DeviceCookieFilter(DeviceCookie device) : IAsyncPageFilter
{
    public Task OnPageHandlerSelectionAsync(PageHandlerSelectedContext context) => Task.CompletedTask;

    public Task OnPageHandlerExecutionAsync(PageHandlerExecutingContext context, PageHandlerExecutionDelegate next)
    {
        var http = context.HttpContext;
        if (CurrentUser.From(http.User) is { } me && device.Read(http.Request) != me.Id)
        {
            device.Issue(http, me.Id);
        }
        return next();
    }
}
