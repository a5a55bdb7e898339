using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class AddressClaims : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_UserAddresses_Address",
                table: "UserAddresses");

            migrationBuilder.CreateTable(
                name: "AddressConfirmations",
                columns: table => new
                {
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    UserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    Address = table.Column<string>(type: "TEXT", maxLength: 320, nullable: false),
                    SentAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_AddressConfirmations", x => x.Id);
                    table.ForeignKey(
                        name: "FK_AddressConfirmations_AspNetUsers_UserId",
                        column: x => x.UserId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_UserAddresses_Address_UserId",
                table: "UserAddresses",
                columns: new[] { "Address", "UserId" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_AddressConfirmations_UserId_SentAt",
                table: "AddressConfirmations",
                columns: new[] { "UserId", "SentAt" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "AddressConfirmations");

            migrationBuilder.DropIndex(
                name: "IX_UserAddresses_Address_UserId",
                table: "UserAddresses");

            // One user per address again: the claims that prove nothing give way to the user who signs in with the
            // address (their email, or verified), and of several unproven claims the first stays.
            migrationBuilder.Sql("""
                DELETE FROM "UserAddresses" WHERE "Address" IN (SELECT "Address" FROM "UserAddresses" GROUP BY "Address" HAVING COUNT(*) > 1)
                  AND NOT EXISTS (SELECT 1 FROM "AspNetUsers" u WHERE u."Id" = "UserAddresses"."UserId" AND u."Email" = "UserAddresses"."Address")
                  AND NOT EXISTS (SELECT 1 FROM "AspNetUserLogins" l WHERE l."LoginProvider" = 'EmailTracking.VerifiedAddress'
                                  AND l."ProviderKey" = "UserAddresses"."Address" AND l."UserId" = "UserAddresses"."UserId");
                DELETE FROM "UserAddresses" WHERE "Id" NOT IN (SELECT MIN("Id") FROM "UserAddresses" GROUP BY "Address");
                """);

            migrationBuilder.CreateIndex(
                name: "IX_UserAddresses_Address",
                table: "UserAddresses",
                column: "Address",
                unique: true);
        }
    }
}
