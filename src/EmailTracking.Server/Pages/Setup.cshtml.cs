using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

public sealed class SetupModel(AccountService accounts, SignInManager<User> signIn, DeviceCookie device) : PageModel
{
    public sealed class SetupInput
    {
        public string Team { get; set; } = "";
        public Plan Plan { get; set; } = Plan.Team;
        public string? Name { get; set; }
        public string Email { get; set; } = "";
        public string Password { get; set; } = "";
    }

    [BindProperty]
    public SetupInput Input { get; set; } = new();

    public async Task<IActionResult> OnGetAsync() => await accounts.AnyUserAsync() ? NotFound() : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        // Only the very first user is created here; afterwards the page does not exist.
        if (await accounts.AnyUserAsync()) return NotFound();
        try
        {
            // An empty password field binds as null, which would make a user without a password (as `et users add` does
            // without --password): this one only ever signs in with it, so Identity's password rules judge "" instead.
            var created = await accounts.CreateFirstUserAsync(new NewUser(Input.Email, Input.Team, Input.Plan, TeamRole.Admin, Input.Password ?? "", Input.Name));
            await signIn.SignInAsync(created.User, isPersistent: true);
            device.Issue(HttpContext, created.User.Id);
            return Redirect("/");
        }
        catch (FirstUserExistsException)
        {
            return NotFound();
        }
        catch (AccountException ex)
        {
            ModelState.AddModelError("", ex.Message);
            return Page();
        }
    }
}
