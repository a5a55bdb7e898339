using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Sqlite.Migrations
{
    /// <inheritdoc />
    public partial class Salesforce : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "SalesforceConnections",
                columns: table => new
                {
                    Id = table.Column<byte[]>(type: "BLOB", nullable: false),
                    TeamId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    ConnectedByUserId = table.Column<byte[]>(type: "BLOB", nullable: false),
                    InstanceUrl = table.Column<string>(type: "TEXT", maxLength: 300, nullable: false),
                    AuthKind = table.Column<int>(type: "INTEGER", nullable: false),
                    SalesforceUsername = table.Column<string>(type: "TEXT", maxLength: 320, nullable: true),
                    ProtectedSecret = table.Column<string>(type: "TEXT", nullable: false),
                    Status = table.Column<int>(type: "INTEGER", nullable: false),
                    StatusMessage = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true),
                    LogSent = table.Column<bool>(type: "INTEGER", nullable: false),
                    LogReplies = table.Column<bool>(type: "INTEGER", nullable: false),
                    LogOpens = table.Column<bool>(type: "INTEGER", nullable: false),
                    LogClicks = table.Column<bool>(type: "INTEGER", nullable: false),
                    LogAutoReplies = table.Column<bool>(type: "INTEGER", nullable: false),
                    LogBounces = table.Column<bool>(type: "INTEGER", nullable: false),
                    UnknownRecipients = table.Column<int>(type: "INTEGER", nullable: false),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_SalesforceConnections", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_SalesforceConnections_TeamId",
                table: "SalesforceConnections",
                column: "TeamId",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "SalesforceConnections");
        }
    }
}
