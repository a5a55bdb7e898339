using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace EmailTracking.Migrations.Postgres.Migrations
{
    /// <inheritdoc />
    public partial class PartialCopyIndexes : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Copies_ProviderThreadId",
                table: "Copies");

            migrationBuilder.DropIndex(
                name: "IX_Copies_SentMessageIdHeader",
                table: "Copies");

            migrationBuilder.DropIndex(
                name: "IX_Copies_ThreadIndex",
                table: "Copies");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ProviderThreadId",
                table: "Copies",
                column: "ProviderThreadId",
                filter: "\"ProviderThreadId\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_SentMessageIdHeader",
                table: "Copies",
                column: "SentMessageIdHeader",
                filter: "\"SentMessageIdHeader\" IS NOT NULL");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ThreadIndex",
                table: "Copies",
                column: "ThreadIndex",
                filter: "\"ThreadIndex\" IS NOT NULL");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_Copies_ProviderThreadId",
                table: "Copies");

            migrationBuilder.DropIndex(
                name: "IX_Copies_SentMessageIdHeader",
                table: "Copies");

            migrationBuilder.DropIndex(
                name: "IX_Copies_ThreadIndex",
                table: "Copies");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ProviderThreadId",
                table: "Copies",
                column: "ProviderThreadId");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_SentMessageIdHeader",
                table: "Copies",
                column: "SentMessageIdHeader");

            migrationBuilder.CreateIndex(
                name: "IX_Copies_ThreadIndex",
                table: "Copies",
                column: "ThreadIndex");
        }
    }
}
