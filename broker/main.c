/* main.c: replaced by the real entry point shortly. */
int main(void)
{
	return 0;
}
