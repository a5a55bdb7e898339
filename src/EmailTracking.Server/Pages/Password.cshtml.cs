using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>
/// The signed-in user changes their web sign-in password. The current one is asked for and checked as sign-in checks it
/// (wrong ones count towards the same 15-minute lock), so a session left open cannot be used to take the account over.
/// A change gives the account a new security stamp: every other web session ends at its next request and every open
/// live feed it holds within <c>Feed:RecheckInterval</c>; this one goes on. API tokens are left as they are (revoke them
/// under API tokens).
/// </summary>
public sealed class PasswordModel(UserManager<User> users, SignInManager<User> signIn, TimeProvider clock) : PageModel
{
    [BindProperty] public string? Current { get; set; }
    [BindProperty] public string? New { get; set; }
    [BindProperty] public string? Confirm { get; set; }
    public bool Changed { get; private set; }
    /// <summary>The password was set by someone else: this page is the only one open until the user chooses theirs.</summary>
    public bool Required => User.HasClaim(c => c.Type == PasswordChangeRequired.Claim);

    public void OnGet(bool changed = false) => Changed = changed;

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await users.FindByIdAsync(CurrentUser.Required(User).Id.ToString());
        if (user is null) return Redirect("/login");
        if (string.IsNullOrEmpty(Current)) ModelState.AddModelError(nameof(Current), "Give your current password.");
        if (string.IsNullOrEmpty(New)) ModelState.AddModelError(nameof(New), "Give a new password.");
        else if (New != Confirm) ModelState.AddModelError(nameof(Confirm), "The new password and its repetition differ.");
        else if (user.MustChangePassword && New == Current) ModelState.AddModelError(nameof(New), "Choose a password other than the current one.");
        if (!ModelState.IsValid) return Page();

        var check = await signIn.CheckPasswordSignInAsync(user, Current!, lockoutOnFailure: true);
        if (check.IsLockedOut)
        {
            ModelState.AddModelError(nameof(Current), Auth.IsShut(user.LockoutEnd, clock.GetUtcNow())
                ? "This account has been closed by an administrator."
                : "Too many wrong passwords: password sign-in and changes are locked for 15 minutes.");
            return Page();
        }
        if (!check.Succeeded)
        {
            ModelState.AddModelError(nameof(Current), "The current password is wrong.");
            return Page();
        }
        var result = await users.ChangePasswordAsync(user, Current!, New!);
        if (!result.Succeeded)
        {
            foreach (var e in result.Errors) ModelState.AddModelError(nameof(New), e.Description);
            return Page();
        }
        if (user.MustChangePassword)
        {
            // Their own now. New != Current: keeping the one someone else chose is not choosing one.
            user.MustChangePassword = false;
            await users.UpdateAsync(user);
        }
        // The new security stamp ends the other sessions; this one is issued again with it.
        await signIn.RefreshSignInAsync(user);
        return RedirectToPage(new { changed = true });
    }
}
