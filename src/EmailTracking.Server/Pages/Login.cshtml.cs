using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <remarks>A browser signed in meanwhile (another tab) is sent on rather than refused: <see cref="SignInAntiforgeryAttribute"/>.</remarks>
[SignInAntiforgery]
public sealed class LoginModel(SignInManager<User> signIn, UserManager<User> users, DeviceCookie device, TimeProvider clock, PasswordResets resets,
    PasswordResetMailer mailer, AppDbContext db) : PageModel
{
    /// <summary>
    /// The one answer to every refused sign-in, whether the address has an account, the password is wrong or the account
    /// is locked after wrong passwords: a stranger cannot tell them apart. It says locks exist; the account's owner is
    /// told theirs by mail (when the server sends mail), or by the answer to the right password.
    /// </summary>
    public string Refused => resets.Offered
        ? "Wrong email or password. After 5 wrong passwords in a row, password sign-in is locked for 15 minutes and the account's owner is sent a mail saying so."
        : "Wrong email or password. After 5 wrong passwords in a row, password sign-in is locked for 15 minutes.";

    /// <summary>Whether "Forgot your password?" leads to a reset by mail (a relay and a public base URL), or says to ask an administrator.</summary>
    public bool ResetOffered => resets.Offered;
    [BindProperty] public string Email { get; set; } = "";
    [BindProperty] public string Password { get; set; } = "";
    [BindProperty(SupportsGet = true)] public string? ReturnUrl { get; set; }

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        // An empty field binds as null (a form the browser did not check, a script): the same answer as a wrong one,
        // not an exception from Identity's lookup or password check.
        var user = await SignInUserAsync(Email);
        if (user is null || string.IsNullOrEmpty(Password) || user.PasswordHash is null)
        {
            // As long as a wrong password for an account takes (the hash is what costs): else the answer's time alone
            // would tell which addresses have an account here, or one without a web password (measured before: 3 ms
            // for an unknown address against 57 for a wrong password).
            VerifyAgainstDecoy(users.PasswordHasher, Password);
            ModelState.AddModelError("", Refused);
            return Page();
        }
        var lockedBefore = await users.IsLockedOutAsync(user);
        var result = await signIn.PasswordSignInAsync(user, Password, isPersistent: true, lockoutOnFailure: true);
        if (result.IsLockedOut)
        {
            // Said only to someone who knows the password (checked here, which also takes as long as a wrong password
            // does): an administrator's lock, where waiting would not help, or the 15 minutes after wrong passwords.
            // Anyone else gets the answer an unknown address gets.
            var shut = Auth.IsShut(user.LockoutEnd, clock.GetUtcNow());
            var owner = lockedBefore && await users.CheckPasswordAsync(user, Password);
            ModelState.AddModelError("", !owner ? Refused
                : shut ? "This account has been closed by an administrator: ask them to open it again."
                : "Too many failed attempts: password sign-in to this account is locked for 15 minutes.");
            // This attempt locked it: its owner is told, off the request (the answer's time stays the same).
            if (!lockedBefore && !shut && resets.Offered && user.Email is not null) mailer.EnqueueLockNotice(user.Email);
            return Page();
        }
        if (!result.Succeeded)
        {
            ModelState.AddModelError("", Refused);
            return Page();
        }
        device.Issue(HttpContext, user.Id);
        // For the Team page. One column set in place, not the user saved again over what sign-in just wrote.
        var now = clock.GetUtcNow();
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.LastSignInAt, now));
        // Someone else chose the password: the change page first (PasswordChangeRequired), with nowhere else to go back to.
        if (user.MustChangePassword) return LocalRedirect(PasswordChangeRequired.PagePath);
        return LocalRedirect(Url.IsLocalUrl(ReturnUrl) ? ReturnUrl! : "/");
    }

    /// <summary>
    /// The account whose sign-in email this is, its domain written in punycode or in Unicode (one mailbox): a browser's
    /// email field submits the domain in punycode, and Identity's own lookup, comparing the text as written, refused
    /// sales@例え.jp typed there (and sales@xn--r8jz45g.jp for a user made with the Unicode form). Tracked by the
    /// context Identity's store uses, for the sign-in's own changes (failed count, lock).
    /// </summary>
    async Task<User?> SignInUserAsync(string? email)
    {
        if (AccountService.NormalizeAddress(email) is not { } address) return null;
        var forms = AccountService.StoredForms(address);
        return await db.Users.OrderBy(u => u.Email).FirstOrDefaultAsync(u => forms.Contains(u.Email!));
    }

    // A hash of a random password nobody knows, made once with the hasher's own settings.
    static string? decoyHash;

    /// <summary>Checks the password against a hash no password matches, for the time it takes.</summary>
    static void VerifyAgainstDecoy(IPasswordHasher<User> hasher, string? password)
    {
        var decoy = new User();
        decoyHash ??= hasher.HashPassword(decoy, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24)));
        hasher.VerifyHashedPassword(decoy, decoyHash, password ?? "");
    }
}
