using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>
/// Asks for a password reset mail. The answer is the same whether or not the address has an account (the lookup and
/// the mail happen in the background); only a request over the limits gets another answer, and that one is counted
/// the same way for every address.
/// </summary>
public sealed class ForgotPasswordModel(PasswordResets resets) : PageModel
{
    public enum ForgotState { Form, Sent, TooMany }

    [BindProperty] public string? Email { get; set; }
    public ForgotState State { get; private set; }
    public bool Offered => resets.Offered;
    public TimeSpan LinkLifetime => resets.LinkLifetime;

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var outcome = await resets.RequestAsync(Email, HttpContext.Connection.RemoteIpAddress, HttpContext.RequestAborted);
        switch (outcome.Result)
        {
            case ResetRequestResult.NotOffered:
                Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                break;
            case ResetRequestResult.Invalid:
                ModelState.AddModelError(nameof(Email), $"'{Email}' is not an email address.");
                Response.StatusCode = StatusCodes.Status400BadRequest;
                break;
            case ResetRequestResult.TooMany:
                State = ForgotState.TooMany;
                var minutes = (int)Math.Ceiling(outcome.RetryAfter!.Value.TotalMinutes);
                ModelState.AddModelError(nameof(Email),
                    $"Too many reset mails were asked for this address or from your network. Try again in {minutes} minute{(minutes == 1 ? "" : "s")}.");
                Response.StatusCode = StatusCodes.Status429TooManyRequests;
                Response.Headers.RetryAfter = ((int)Math.Ceiling(outcome.RetryAfter.Value.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
                break;
            default:
                State = ForgotState.Sent;
                Email = Email!.Trim();
                break;
        }
        return Page();
    }
}
