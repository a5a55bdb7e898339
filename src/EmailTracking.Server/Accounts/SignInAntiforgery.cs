using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.Filters;
using Microsoft.AspNetCore.Mvc.Routing;
using Microsoft.AspNetCore.Mvc.ViewFeatures;

namespace EmailTracking.Server.Accounts;

/// <summary>
/// The sign-in form's antiforgery check, with one difference: a browser that is signed in already, whose form's token
/// no longer fits it, goes on to where the form was headed (its local ReturnUrl, or the home page) instead of the 400
/// page. That is the sign-in page left open in one tab while the user signed in in another: the form's token was made
/// for nobody, and the browser is now someone. Nothing is done with what the form carries (no sign-in as whoever it
/// names), so a forged post can do no more than send the user to one of this site's own pages. Any other refused token
/// is refused as everywhere else, and a token that fits still signs in (switching to another account on purpose).
/// </summary>
[AttributeUsage(AttributeTargets.Class)]
public sealed class SignInAntiforgeryAttribute : Attribute, IAsyncAuthorizationFilter, IAntiforgeryPolicy, IOrderedFilter
{
    /// <summary>As the automatic check's own order: the page's policy is this one instead (the closest to the page wins).</summary>
    public int Order => 1000;

    public async Task OnAuthorizationAsync(AuthorizationFilterContext context)
    {
        if (!context.IsEffectivePolicy<IAntiforgeryPolicy>(this)) return;
        var http = context.HttpContext;
        // What the automatic check leaves alone, this leaves alone.
        if (HttpMethods.IsGet(http.Request.Method) || HttpMethods.IsHead(http.Request.Method)
            || HttpMethods.IsTrace(http.Request.Method) || HttpMethods.IsOptions(http.Request.Method)) return;
        var antiforgery = http.RequestServices.GetRequiredService<IAntiforgery>();
        try
        {
            await antiforgery.ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException ex)
        {
            if (http.User.Identity?.IsAuthenticated == true)
            {
                context.Result = new LocalRedirectResult(await HeadedAsync(context));
                return;
            }
            http.RequestServices.GetRequiredService<ILogger<SignInAntiforgeryAttribute>>()
                .LogInformation(ex, "Antiforgery token validation failed on the sign-in form: {Message}", ex.Message);
            context.Result = new AntiforgeryValidationFailedResult();
        }
    }

    /// <summary>The form's ReturnUrl (posted, or in the address it was posted to) when it is one of this site's pages; else the home page.</summary>
    static async Task<string> HeadedAsync(AuthorizationFilterContext context)
    {
        var http = context.HttpContext;
        string? url = null;
        if (http.Request.HasFormContentType)
        {
            try
            {
                url = (await http.Request.ReadFormAsync(http.RequestAborted))["ReturnUrl"].FirstOrDefault();
            }
            catch (Exception ex) when (ex is InvalidDataException or IOException or BadHttpRequestException)
            {
                // A form that cannot be read says nowhere to go: the home page.
            }
        }
        if (string.IsNullOrEmpty(url)) url = http.Request.Query["ReturnUrl"].FirstOrDefault();
        // As the sign-in itself decides it (Url.IsLocalUrl): never "//host" or "/\host".
        return http.RequestServices.GetRequiredService<IUrlHelperFactory>().GetUrlHelper(context).IsLocalUrl(url) ? url! : "/";
    }
}
