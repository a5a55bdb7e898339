using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class UnsentContent : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<Guid>(
                name: "ResendClaim",
                table: "Copies",
                type: "uuid",
                nullable: true);

            migrationBuilder.AddColumn<DateTimeOffset>(
                name: "ResendClaimedAt",
                table: "Copies",
                type: "timestamp with time zone",
                nullable: true);

            migrationBuilder.CreateTable(
                name: "UnsentContents",
                columns: table => new
                {
                    TrackedMessageId = table.Column<Guid>(type: "uuid", nullable: false),
                    MailboxId = table.Column<Guid>(type: "uuid", nullable: false),
                    Html = table.Column<string>(type: "text", nullable: false),
                    Text = table.Column<string>(type: "text", nullable: true),
                    KeptUntil = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_UnsentContents", x => x.TrackedMessageId);
                    table.ForeignKey(
                        name: "FK_UnsentContents_Messages_TrackedMessageId",
                        column: x => x.TrackedMessageId,
                        principalTable: "Messages",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "UnsentAttachments",
                columns: table => new
                {
                    Id = table.Column<Guid>(type: "uuid", nullable: false),
                    TrackedMessageId = table.Column<Guid>(type: "uuid", nullable: false),
                    Ordinal = table.Column<int>(type: "integer", nullable: false),
                    FileName = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    MediaType = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    Content = table.Column<byte[]>(type: "bytea", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_UnsentAttachments", x => x.Id);
                    table.ForeignKey(
                        name: "FK_UnsentAttachments_UnsentContents_TrackedMessageId",
                        column: x => x.TrackedMessageId,
                        principalTable: "UnsentContents",
                        principalColumn: "TrackedMessageId",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ResendClaim",
                table: "Copies",
                column: "ResendClaim",
                filter: "\"ResendClaim\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_UnsentAttachments_TrackedMessageId",
                table: "UnsentAttachments",
                column: "TrackedMessageId");

            migrationBuilder.CreateIndex(
                name: "IX_UnsentContents_KeptUntil",
                table: "UnsentContents",
                column: "KeptUntil");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "UnsentAttachments");

            migrationBuilder.DropTable(
                name: "UnsentContents");

            migrationBuilder.DropIndex(
                name: "IX_Copies_ResendClaim",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "ResendClaim",
                table: "Copies");

            migrationBuilder.DropColumn(
                name: "ResendClaimedAt",
                table: "Copies");
        }
    }
}
